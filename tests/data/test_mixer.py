import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from noisymss.audio.effects import Chain, Gain, PitchShift
from noisymss.audio.io import write_audio
from noisymss.data.annotations import write_f0
from noisymss.data.catalog import Catalog, Entry
from noisymss.data.datamodule import MixDataset
from noisymss.data.epochs import EpochSampler
from noisymss.data.mixer import Mixer, MixRecipe
from noisymss.data.table import PackedStrings, StemTable

SR = 8000
CLASSES = ("vocals", "drums", "bass", "other")


def _tone(freq, seconds=2.0, level=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * freq * t))[None].astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two songs of tone stems; a multi-label stem; a silent stem; one vocal stem with f0 truth."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    specs = [  # id, song, audio, labels, annotated
        ("s1/vocals", "s1", _tone(440), ("vocals",), True),
        ("s1/drums", "s1", (rng.standard_normal((1, 2 * SR)) * 0.1).astype(np.float32), ("drums",), False),
        ("s1/bass", "s1", _tone(110), ("bass",), False),
        ("s1/other", "s1", np.zeros((1, 2 * SR), np.float32), ("other",), False),
        ("s2/vocals", "s2", _tone(330), ("vocals",), False),
        ("s2/bass", "s2", _tone(98), ("bass",), False),
        ("s2/vocdrums", "s2", _tone(550) + (rng.standard_normal((1, 2 * SR)) * 0.05).astype(np.float32), ("vocals", "drums"), False),
    ]
    entries = []
    for sid, song, audio, labels, annotated in specs:
        path = write_audio(root / f"{sid.replace('/', '_')}.wav", audio, SR)
        ann = ""
        if annotated:
            ann = str(root / "s1_vocals.f0.txt")
            write_f0(ann, np.arange(200) * 0.01, np.full(200, 440.0))
        entries.append(Entry(sid, song, str(path), "stem", 2.0, SR, 1, "train", labels, labels, ann))
    cat = Catalog(entries, root)
    cat.save(root / "c.csv")
    return Catalog.load(root / "c.csv")


def _mixer(cat, **recipe):
    table = StemTable.build(cat, cat.stems(), CLASSES, cat.labels())
    effects = recipe.pop("effects", None)
    return Mixer(table, MixRecipe(segment=0.5, sample_rate=SR, channels=1, **recipe), effects=effects, seed=7)


def test_packed_strings():
    items = ["a", "", "ünï/cödé.wav", "x" * 300]
    packed = PackedStrings(items)
    assert [packed[i] for i in range(len(items))] == items and len(packed) == 4


def test_same_seed_epoch_index_gives_the_same_example(tiny):
    m1, m2 = _mixer(tiny), _mixer(tiny)
    a, b = m1.example(3, 11), m2.example(3, 11)
    np.testing.assert_array_equal(a.mixture, b.mixture)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.stems == b.stems
    others = [m1.example(e, i).mixture for e, i in ((3, 12), (4, 11))]
    assert not any(np.array_equal(a.mixture, o) for o in others)
    assert not np.array_equal(m1.example(3, 11, "valid").mixture, a.mixture)


def test_sources_sum_to_mixture_and_label_is_the_union_of_stems(tiny):
    m = _mixer(tiny, effects=Chain([Gain(db=(-6, 6))]))
    for i in range(40):
        ex = m.example(0, i)
        assert ex.mixture.shape == (1, SR // 2) and ex.sources.shape == (4, 1, SR // 2)
        np.testing.assert_allclose(ex.sources.sum(0), ex.mixture, atol=1e-6)
        union = np.max([m.table.labels[s] for s in ex.stems] + [np.zeros(4, np.uint8)], axis=0)
        np.testing.assert_array_equal(ex.label, union)
        for j in range(4):  # a class with audio in its source is in the label
            assert np.abs(ex.sources[j]).max() == 0 or ex.label[j] == 1


def test_silent_stems_never_enter_the_label(tiny):
    m = _mixer(tiny, class_prob={"other": 1.0, "bass": 1.0})
    for i in range(20):
        ex = m.example(0, i)
        assert ex.label[CLASSES.index("other")] == 0 and ex.label[CLASSES.index("bass")] == 1


@pytest.mark.parametrize("policy", ["exclude", "all", "interference", "catch_all"])
def test_multi_label_policies(tiny, policy):
    m = _mixer(tiny, multi_label=policy, class_prob=0.8, interference_prob=0.5)
    multi = next(i for i in range(len(m.table)) if m.table.labels[i].sum() > 1)
    used = 0
    for i in range(120):
        ex = m.example(0, i)
        if multi not in ex.stems:
            np.testing.assert_allclose(ex.sources.sum(0), ex.mixture, atol=1e-6)
            continue
        used += 1
        assert ex.label[0] == 1 and ex.label[1] == 1  # both classes are audible, so both are labelled
        residual = ex.mixture - ex.sources.sum(0)
        if policy == "interference":
            assert np.abs(residual).max() > 0.01  # not a target: in the mixture, in no source
        else:
            np.testing.assert_allclose(residual, 0, atol=1e-6)
        if policy == "catch_all":  # the only audible 'other' stem here: it is the 'other' target
            assert np.abs(ex.sources[CLASSES.index("other")]).max() > 0.01
    assert (used == 0) == (policy == "exclude")


def test_catch_all_needs_its_class(tiny):
    with pytest.raises(ValueError, match="catch-all class 'piano'"):
        _mixer(tiny, multi_label="catch_all", catch_all="piano")


def test_same_song_draws_stay_in_one_song(tiny):
    m = _mixer(tiny, same_song=True, class_prob=1.0)
    songs = m.table.song
    for i in range(30):
        ex = m.example(0, i)
        assert len({int(songs[s]) for s in ex.stems}) == 1


def test_same_song_stems_come_from_one_moment(melody_corpus):
    """Stems of one song summed at one start give back the song's mixture there (a silent stem is left out)."""
    from scipy.signal import correlate

    from noisymss.audio.io import read_audio
    from noisymss.data.table import StemTable

    cat = Catalog.load(melody_corpus / "catalog.csv")
    table = StemTable.build(cat, cat.stems(), cat.classes(), cat.labels())
    m = Mixer(table, MixRecipe(segment=0.5, sample_rate=8000, channels=1, class_prob=1.0, same_song=True), seed=2)
    mixtures = {e.song: read_audio(cat.resolve(e.path), sample_rate=8000, channels=1)[0] for e in cat.mixtures()}
    song_of = {i: e.song for i, e in enumerate(cat.stems())}
    for i in range(8):
        ex = m.example(0, i)
        mix = mixtures[song_of[ex.stems[0]]]
        seg = ex.mixture[0].astype(np.float64)
        energy = np.convolve(mix.astype(np.float64) ** 2, np.ones(len(seg)), "valid") * np.sum(seg**2)
        # the example is the song at one moment: it correlates with the mixture there as with itself
        # (short of 1 by the sub-sample offset of a start that falls between 8 kHz samples)
        assert np.max(correlate(mix, seg, mode="valid") / np.sqrt(energy + 1e-12)) > 0.98


def test_f0_follows_pitch_shift_and_is_unknown_without_truth(tiny):
    shift = Chain([PitchShift(p=1.0, semitones=(2.0, 2.0))])
    m = _mixer(tiny, with_f0=True, class_prob={"vocals": 1.0}, effects=shift)
    seen_truth = seen_unknown = 0
    for i in range(30):
        ex = m.example(0, i)
        vocal = ex.stems[0]
        assert ex.f0.shape == (50,)
        if m.table.annotations[vocal]:
            np.testing.assert_allclose(ex.f0, 440.0 * 2 ** (2 / 12), rtol=1e-6)
            seen_truth += 1
        else:
            assert np.isnan(ex.f0).all()
            seen_unknown += 1
    assert seen_truth and seen_unknown
    quiet = _mixer(tiny, with_f0=True, class_prob={"bass": 1.0})
    assert np.all(quiet.example(0, 0).f0 == 0)  # no melody stem: unvoiced, and known to be


def test_examples_do_not_depend_on_worker_count(tiny):
    m = _mixer(tiny, effects=Chain([Gain(db=(-6, 6))]))
    batches = {}
    for workers in (0, 2):
        dataset = MixDataset(m, 12, stream="train", outputs=("mixture", "label"))
        loader = DataLoader(dataset, sampler=EpochSampler(12, epoch=1), batch_size=4, num_workers=workers)
        batches[workers] = list(loader)
    for a, b in zip(batches[0], batches[2]):
        torch.testing.assert_close(a["mixture"], b["mixture"], rtol=0, atol=0)
        torch.testing.assert_close(a["label"], b["label"], rtol=0, atol=0)


def test_unusable_recipe_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="multi_label='some'"):
        MixRecipe(multi_label="some")
    table = StemTable.build(tiny, tiny.stems(), ("piano",), tiny.labels())
    with pytest.raises(ValueError, match="no stem can be drawn"):
        Mixer(table, MixRecipe())
