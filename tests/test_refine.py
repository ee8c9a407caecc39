"""Self-refining of stem labels: the relabel plumbing with a fake scorer, resume, reports."""
import csv
import shutil

import numpy as np
import pytest
import torch

from noisymss.audio.io import write_audio
from noisymss.data.catalog import Catalog, Entry
from noisymss.refine import RefineSettings, flip_table, labels_from, refine_catalog, refine_report, score_stem

SETTINGS = RefineSettings(sample_rate=16000, channels=1, window=1.0, hop=0.5)


class PeakinessScorer(torch.nn.Module):
    """A perfect scorer for the timbres corpus: windows whose power sits in few FFT bins are 'tone', others 'noise'."""

    def forward(self, audio):
        power = torch.fft.rfft(audio.mean(1)).abs().pow(2)
        top = power.topk(power.shape[-1] // 100, dim=-1).values.sum(-1) / power.sum(-1).clamp(min=1e-12)
        return torch.stack([(top - 0.5) * 20, (0.5 - top) * 20], dim=-1)  # tones ~1, noise ~0.05


def _copy(catalog, tmp_path):
    shutil.copytree(catalog.parent, tmp_path, dirs_exist_ok=True)  # label versions go beside the copy
    return Catalog.load(tmp_path / "catalog.csv")


def test_refine_fixes_an_injected_mislabel_and_leaves_the_given_labels(timbres, tmp_path):
    cat = _copy(timbres, tmp_path)
    before = (tmp_path / "catalog.csv").read_bytes()
    labels, scores = refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "refined", {"checkpoint": "fake"},
                                    progress=False)
    assert cat.labels()["s1/noise"] == ("tone",) and labels["s1/noise"] == ("noise",)
    assert all(labels[e.id] == e.true_labels for e in cat.stems())
    assert (tmp_path / "catalog.csv").read_bytes() == before  # given labels untouched
    again = Catalog.load(tmp_path / "catalog.csv")
    assert again.labels("refined") == labels and again.provenance("refined")["checkpoint"] == "fake"
    rows = {r["class"]: r for r in refine_report(again, ["tone", "noise"], labels, scores)}
    assert rows["all"]["changed_stems"] == 1 and rows["all"]["refined_exact_match"] == 100.0
    assert rows["all"]["given_exact_match"] == pytest.approx(100 * 11 / 12)
    assert rows["tone"]["removed"] == 1 and rows["noise"]["added"] == 1
    # beside the version: the probabilities it was thresholded from, and its flip table
    with open(tmp_path / "catalog.labels" / "refined.probs.csv", newline="") as f:
        probs = {r["id"]: r for r in csv.DictReader(f)}
    assert set(probs) == {e.id for e in cat.stems()}
    for key, row in probs.items():
        assert [float(row["tone"]), float(row["noise"])] == pytest.approx(scores[key].probs, abs=1e-4)
        assert labels[key] == tuple(c for c in ("tone", "noise") if float(row[c]) > 0.5)
    with open(tmp_path / "catalog.labels" / "refined.flips.csv", newline="") as f:
        flips = [(r["from"], r["to"], int(r["stems"])) for r in csv.DictReader(f)]
    assert flips[0] == ("tone", "noise", 1) and sum(n for *_, n in flips) == 12
    assert all(a == b for a, b, _ in flips[1:])
    with pytest.raises(ValueError, match="exists"):
        refine_catalog(PeakinessScorer(), again, ["tone", "noise"], SETTINGS, "refined", {}, progress=False)
    assert not list((tmp_path / "catalog.labels").glob("*.part"))


def test_flip_table_counts_each_change_once_changes_first():
    before = {"a": ("bass",), "b": ("bass",), "c": ("drums",), "d": ("bass", "other"), "e": ()}
    after = {"a": ("other",), "b": ("bass",), "c": ("other",), "d": ("bass",), "e": ("drums",)}
    assert flip_table(before, after, sorted(before)) == [
        {"from": "(none)", "to": "drums", "stems": 1}, {"from": "bass", "to": "other", "stems": 1},
        {"from": "bass+other", "to": "bass", "stems": 1}, {"from": "drums", "to": "other", "stems": 1},
        {"from": "bass", "to": "bass", "stems": 1}]
    assert flip_table(before, after, ["b"]) == [{"from": "bass", "to": "bass", "stems": 1}]


def test_silent_and_unreadable_stems_keep_their_given_labels_and_are_reported(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    tone = write_audio(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), sr)
    silent = write_audio(tmp_path / "silent.wav", np.zeros((1, sr), np.float32), sr)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    rows = [Entry("a", "a", str(tone), "stem", 1.0, sr, 1, "train", ("noise",), ("tone",)),
            Entry("b", "b", str(silent), "stem", 1.0, sr, 1, "train", ("noise",), ("noise",)),
            Entry("c", "c", str(broken), "stem", 1.0, sr, 1, "train", ("tone",), ("tone",))]
    Catalog(rows, tmp_path).save(tmp_path / "catalog.csv")
    cat = Catalog.load(tmp_path / "catalog.csv")
    labels, scores = refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "v1", {}, progress=False)
    assert labels == {"a": ("tone",), "b": ("noise",), "c": ("tone",)}
    assert scores["b"].status == "silent" and scores["c"].status == "unreadable" and scores["c"].reason
    not_scored = cat.provenance("v1")["not_scored"]
    assert set(not_scored) == {"b", "c"}
    assert refine_report(cat, ["tone", "noise"], labels, scores)[-1]["not_scored"] == 2


def test_a_rerun_after_a_crash_reuses_the_finished_scores(timbres, tmp_path):
    cat = _copy(timbres, tmp_path)
    calls, crash_after = [], [5]

    class Killed(Exception):
        pass

    def crashing(model, path, settings, device):
        if len(calls) == crash_after[0]:
            raise Killed  # as a kill in the middle of the run
        calls.append(path)
        return score_stem(model, path, settings, device)

    with pytest.raises(Killed):
        refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "r", {"checkpoint": "x"}, progress=False,
                       scorer=crashing)
    assert "r" not in cat.label_versions()  # nothing half-done is published
    first = list(calls)
    calls.clear()
    crash_after[0] = None
    labels, _ = refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "r", {"checkpoint": "x"},
                               progress=False, scorer=crashing)
    assert len(first) == 5 and len(calls) == 7 and not set(first) & set(calls)  # only the unfinished stems
    assert labels["s1/noise"] == ("noise",)
    # an interrupted run's scores are never mixed with another checkpoint's
    calls.clear()
    crash_after[0] = 0
    with pytest.raises(Killed):
        refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "r2", {"checkpoint": "x"}, progress=False,
                       scorer=crashing)
    with pytest.raises(ValueError, match="other settings or another checkpoint"):
        refine_catalog(PeakinessScorer(), cat, ["tone", "noise"], SETTINGS, "r2", {"checkpoint": "y"}, progress=False)


def test_thresholds_per_class_and_aggregation():
    assert labels_from([0.6, 0.4], ["a", "b"], 0.5) == ("a",)
    assert labels_from([0.6, 0.4], ["a", "b"], {"a": 0.7, "b": 0.3}) == ("b",)
    with pytest.raises(ValueError, match="aggregate 'median'"):
        RefineSettings(aggregate="median")


class RoutingSeparator(torch.nn.Module):
    """A separator that knows the timbres corpus: tonal windows go to source 0 ('tone'), noisy ones
    to source 1, as PeakinessScorer decides; (B, C, T) → (B, 2, C, T)."""

    def forward(self, audio):
        tone = PeakinessScorer()(audio).softmax(-1)[:, 0]
        return torch.stack([audio * tone[:, None, None], audio * (1 - tone)[:, None, None]], dim=1)


def test_a_separator_filters_stems_as_ccom_did(timbres, tmp_path):
    from noisymss.refine import labels_from_levels, separator_levels

    # the loudest source's label where it leads every other by the margin, else none (left out)
    assert labels_from_levels([-3.0, -30.0, -25.0], ["a", "b", "c"], 20.0) == ("a",)
    assert labels_from_levels([-3.0, -30.0, -15.0], ["a", "b", "c"], 20.0) == ()
    assert labels_from_levels([-40.0, -10.0], ["a", "b"], 20.0) == ("b",)
    cat = _copy(timbres, tmp_path)
    labels, scores = refine_catalog(RoutingSeparator(), cat, ["tone", "noise"], SETTINGS, "filtered", {"checkpoint": "fake"},
                                    progress=False, scorer=separator_levels)
    assert all(s.levels_db and s.probs is None for s in scores.values())
    assert labels["s1/noise"] == ("noise",)  # the mislabelled stem: its own source is the noise one
    assert all(labels[e.id] == e.true_labels for e in cat.stems())
    with open(tmp_path / "catalog.labels" / "filtered.probs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["score"] for r in rows} == {"level_db"} and float(rows[0]["tone"]) != float(rows[0]["noise"])
    strict = RefineSettings(sample_rate=16000, channels=1, window=1.0, hop=0.5, margin_db=1000.0)
    with pytest.raises(ValueError, match="lost every label at margin 1000 dB; lower --margin_db"):  # nothing clear enough: refused, not written
        refine_catalog(RoutingSeparator(), cat, ["tone", "noise"], strict, "nothing", {}, progress=False,
                       scorer=separator_levels)


def test_several_models_score_a_stem_with_their_mean_probability(timbres):
    from noisymss.refine import ProbabilityMean

    class Scaled(torch.nn.Module):  # another classifier: the same evidence, more or less sure
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, audio):
            return PeakinessScorer()(audio) * self.k

    cat = Catalog.load(timbres)
    path = cat.resolve(cat.stems()[0].path)
    alone = [score_stem(Scaled(k), path, SETTINGS).probs for k in (0.1, 0.5)]
    together = score_stem(ProbabilityMean([Scaled(0.1), Scaled(0.5)]), path, SETTINGS).probs
    assert together == pytest.approx([(a + b) / 2 for a, b in zip(*alone)], abs=1e-5)


class BiasedScorer(torch.nn.Module):
    """PeakinessScorer with the tone probability squeezed into [0.6, 1]: noise stems get ~0.62 'tone',
    as a classifier trained on labels that often call noise 'tone' would; 0.5 labels them tone+noise."""

    def forward(self, audio):
        logits = PeakinessScorer()(audio)
        tone = 0.6 + 0.4 * logits[:, 0].sigmoid()
        return torch.stack([torch.logit(tone), logits[:, 1]], dim=-1)


def test_thresholds_calibrated_on_a_trusted_split_undo_a_classifier_s_bias(timbres, tmp_path):
    from noisymss.refine import calibrated_thresholds

    cat = _copy(timbres, tmp_path)
    classes = ["tone", "noise"]
    plain, _ = refine_catalog(BiasedScorer(), cat, classes, SETTINGS, None, {}, progress=False)
    assert plain["s3/noise"] == ("tone", "noise")  # a fixed 0.5 adds 'tone' to every noise stem
    calibrated = RefineSettings(sample_rate=16000, channels=1, window=1.0, hop=0.5, calibrate="valid")
    truth = cat.labels("true")
    labels, scores = refine_catalog(BiasedScorer(), cat, classes, calibrated, "cal", {"checkpoint": "fake"}, progress=False,
                                    trusted=truth)
    train = [e for e in cat.stems("train")]
    assert all(labels[e.id] == e.true_labels for e in train)  # the mislabelled s1 fixed, no tone added to noise
    assert set(scores) == {e.id for e in train}  # the validation stems chose the thresholds and keep their labels
    assert all(labels[e.id] == cat.labels()[e.id] for e in cat.stems("valid"))
    chosen = Catalog.load(tmp_path / "catalog.csv").provenance("cal")["thresholds"]
    valid_noise_tone = max(score_stem(BiasedScorer(), cat.resolve(e.path), SETTINGS).probs[0] for e in cat.stems("valid")
                           if e.true_labels == ("noise",))
    assert valid_noise_tone < chosen["tone"] <= valid_noise_tone + 0.05  # the grid value nearest 0.5 that separates
    assert chosen["noise"] == 0.5  # already separating at 0.5: the tie goes to 0.5
    with pytest.raises(ValueError, match="trusted labels"):
        refine_catalog(BiasedScorer(), cat, classes, calibrated, None, {}, progress=False)
    # a class without a positive among the trusted stems keeps 0.5
    assert calibrated_thresholds(scores, {k: ("noise",) for k in scores}, classes)["tone"] == 0.5
