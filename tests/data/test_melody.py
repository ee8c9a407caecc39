"""The melody view: JDC patches drawn by Mixers, aligned with f0 and pseudo labels, and whole songs."""
import numpy as np
import pytest
import torch

from noisymss.data.annotations import f0_on_grid, read_f0
from noisymss.data.catalog import Catalog, CatalogError
from noisymss.data.melody import PATCH_SAMPLES, MelodyDataModule, check_mode
from noisymss.data.mixer import MixRecipe
from noisymss.melody.features import PATCH


def _dm(corpus, **kw):
    return MelodyDataModule(str(corpus / "catalog.csv"), train_examples=16, batch_size=8, **kw)


def _find(song: np.ndarray, patch: np.ndarray) -> int:
    """The frame (80-sample step) where `patch` starts in `song`; fails when it is not there exactly."""
    for k in range(0, len(song) - PATCH_SAMPLES + 1, 80):
        if np.array_equal(song[k:k + PATCH_SAMPLES], patch):
            return k // 80
    pytest.fail("patch not found on the frame grid of its song")


def _songs(dm, role):
    cat = Catalog.load(dm.catalog_path)
    return {e.id: (dm.store.load(str(cat.resolve(e.path)))[0], e) for e in dm.rows(role)}, cat


def test_labelled_patches_are_song_frames_with_their_f0_classes(melody_corpus):
    dm = _dm(melody_corpus)
    dm.setup()
    assert len(dm.rows("labelled")) == 2 and len(dm.songs("valid")) == 1
    cat = Catalog.load(melody_corpus / "catalog.csv")
    unlabelled = [str(cat.resolve(e.path)) for e in cat.mixtures("unlabelled")]
    assert not any(p in dm.store for p in unlabelled)  # decoded only when a teacher asks for them
    assert len(dm.unlabelled_audio()) == 3 and all(p in dm.store for p in unlabelled)
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (8, PATCH_SAMPLES) and batch["target_idx"].shape == (8, PATCH, 8)
    assert batch["labelled"].all() and batch["mask"].all()  # no pseudo labels yet: labelled only
    torch.testing.assert_close(batch["target_prob"][..., 0], torch.ones(8, PATCH))
    songs, cat = _songs(dm, "labelled")
    ds, voiced = dm.train_dataloader().dataset, 0
    for i in range(8):
        item = ds[(0, i)]
        for audio, entry in songs.values():
            try:
                frame = _find(audio, item["audio"].numpy())
            except pytest.fail.Exception:
                continue
            times, hz = read_f0(cat.resolve(entry.annotation))
            expected = f0_on_grid(times, hz, frame * 0.01, PATCH)
            np.testing.assert_allclose(item["f0"].numpy(), expected, rtol=1e-6)
            voiced += int((expected > 0).sum())
            break
        else:
            pytest.fail(f"patch {i} is in no labelled song")
    assert voiced > 50


def test_pseudo_labels_follow_their_frames_and_are_state(melody_corpus):
    dm = _dm(melody_corpus, unlabelled_ratio=3.0)
    dm.setup()
    heard = dm.unlabelled_audio()
    frames = {k: len(x) // 80 + 1 for k, x in heard.items()}
    # class = song frame + 1, so a patch's targets say where in the song it was cut
    pseudo = {k: (np.repeat(np.arange(1, n + 1, dtype=np.int16)[:, None], 8, 1), np.full((n, 8), 0.125, np.float16))
              for k, n in frames.items()}
    dm.iteration = 1
    dm.set_labels("teacher0", pseudo)
    ds = dm.train_dataloader().dataset
    items = [ds[(0, i)] for i in range(24)]
    unlabelled = [it for it in items if not it["labelled"]]
    assert len(unlabelled) >= 12  # 3 of 4 on average
    for it in unlabelled:
        first = int(it["target_idx"][0, 0]) - 1
        np.testing.assert_array_equal(it["target_idx"][:, 0].numpy(), np.arange(first, first + PATCH) + 1)
        assert any(np.array_equal(x[first * 80:first * 80 + PATCH_SAMPLES], it["audio"].numpy()) for x in heard.values())
    state = dm.state_dict()
    other = _dm(melody_corpus)
    other.load_state_dict(state)
    assert other.label_version == "teacher0" and other.iteration == 1 and set(other.pseudo) == set(pseudo)


def test_songs_the_teacher_left_out_are_not_drawn(melody_corpus):
    dm = _dm(melody_corpus, unlabelled_ratio=1000.0)
    dm.setup()
    heard = dm.unlabelled_audio()
    kept = sorted(heard)[0]
    n = len(heard[kept]) // 80 + 1
    dm.set_labels("teacher0", {kept: (np.ones((n, 8), np.int16), np.full((n, 8), 0.125, np.float16))})
    ds = dm.train_dataloader().dataset
    for i in range(10):
        it = ds[(0, i)]
        if not it["labelled"]:
            assert _find(heard[kept], it["audio"].numpy()) >= 0


def test_noisy_teacher_student_noise_is_fixed_per_song_and_iteration_and_heard_by_the_student(melody_corpus):
    dm = _dm(melody_corpus, unlabelled_ratio=1000.0)
    dm.setup()
    clean = {k: v.copy() for k, v in dm.unlabelled_audio().items()}
    dm.noise_mode, dm.iteration = "noisy_teacher_student", 1
    a = dm.unlabelled_audio()
    b = dm.unlabelled_audio()
    key = next(iter(clean))
    assert np.array_equal(a[key], b[key]) and not np.allclose(a[key], clean[key])
    pseudo = {k: (np.ones((len(x) // 80 + 1, 8), np.int16), np.full((len(x) // 80 + 1, 8), 0.125, np.float16))
              for k, x in a.items()}
    dm.set_labels("teacher0", pseudo)
    item = next(it for it in (dm.train_dataloader().dataset[(0, i)] for i in range(10)) if not it["labelled"])
    assert any(np.array_equal(x[k * 80:k * 80 + PATCH_SAMPLES], item["audio"].numpy())
               for x in a.values() for k in range(len(x) // 80))  # the student trains on what the teacher heard
    dm.iteration = 2
    assert not np.allclose(dm.unlabelled_audio()[key], a[key])


def test_bad_mode_and_split_are_one_line_errors(melody_corpus):
    with pytest.raises(ValueError, match="unknown teacher-student mode 'noisiest'"):
        check_mode("noisiest")
    with pytest.raises(CatalogError, match="no mixtures in split 'nope'"):
        _dm(melody_corpus, labelled_split="nope").setup()
    with pytest.raises(ValueError, match="remix=1.5"):
        _dm(melody_corpus, remix=1.5)


def test_remixed_patches_of_one_song_are_its_mixture_with_aligned_targets(melody_corpus):
    """Remixing all of a song's stems at one moment gives back its mixture (the stems sum to it; each
    is resampled on its own, so up to rounding), so each remixed patch is a frame-grid place of a
    labelled mixture, with the targets of that place."""
    dm = _dm(melody_corpus, remix=1.0, remix_accompaniment=1.0, remix_same_song=True)
    dm.setup()
    ds = dm.train_dataloader().dataset
    songs, cat = _songs(dm, "labelled")
    voiced = 0
    for i in range(6):
        item = ds[(0, i)]
        assert torch.equal(item["audio"], ds[(0, i)]["audio"])  # a pure function of the key
        patch = item["audio"].numpy()
        matches = sorted((float(np.sqrt(np.mean((x[k * 80:k * 80 + PATCH_SAMPLES] - patch) ** 2))), k, e.id)
                         for x, e in songs.values() for k in range((len(x) - PATCH_SAMPLES) // 80 + 1))
        (error, frame, song), runner_up = matches[0], matches[1][0]
        entry = songs[song][1]
        # stems quieter than the -50 dBFS silence floor there are left out of the remix: at most 3
        assert error < 3 * 10 ** (-50 / 20) < runner_up, (error, runner_up)
        times, hz = read_f0(cat.resolve(entry.annotation))
        expected = f0_on_grid(times, hz, frame * 0.01, PATCH)
        np.testing.assert_allclose(item["f0"].numpy(), expected, rtol=1e-6)
        voiced += int((expected > 0).sum())
    assert voiced > 30


def test_remix_class_presence_follows_its_probabilities(melody_corpus):
    p, n = 0.3, 400
    dm = _dm(melody_corpus, remix=1.0, remix_accompaniment=p)
    mixer = dm.mixer("remix")
    labels = np.stack([mixer.example(0, i).label for i in range(n)])
    classes = list(mixer.table.classes)
    assert labels[:, classes.index("vocals")].mean() > 0.9  # always drawn (unless silent there)
    songs = [len(set(mixer.table.song[mixer.example(0, i).stems])) for i in range(40)]
    assert max(songs) > 1  # accompaniment from other songs
    for c in classes:
        if c != "vocals":  # drawn with probability p; a segment silent everywhere it looked is left out
            rate = labels[:, classes.index(c)].mean()
            assert p - 0.12 < rate < p + 4 * np.sqrt(p * (1 - p) / n), (c, rate)


def test_remix_without_annotated_vocal_stems_is_a_clear_error(tmp_path):
    from noisymss.audio.io import write_audio
    from noisymss.data.catalog import Entry

    write_audio(tmp_path / "mix.wav", np.zeros((1, 8000), np.float32), 8000)
    write_audio(tmp_path / "drums.wav", np.zeros((1, 8000), np.float32), 8000)
    (tmp_path / "mix.f0.txt").write_text("0.0\t0.0\n")
    Catalog([Entry("m", "s", "mix.wav", "mixture", 1.0, 8000, 1, "labelled", (), None, "mix.f0.txt"),
             Entry("d", "s", "drums.wav", "stem", 1.0, 8000, 1, "labelled", ("drums",))], tmp_path).save(tmp_path / "catalog.csv")
    with pytest.raises(CatalogError, match="remix needs stems labelled 'vocals'"):
        MelodyDataModule(str(tmp_path / "catalog.csv"), remix=0.5).mixer("remix")


def test_vocals_over_other_clips_accompaniment_at_a_drawn_level_keep_their_f0(vocal_clips):
    """MIR-1K-layout clips (16 kHz, vocals and accompaniment as channels): a remix puts one clip's
    vocal over accompaniment from the labelled singers' clips (two splits here), at -5..+5 dB, and its
    target is that vocal's own f0 at the patch's frames, after resampling to 8 kHz."""
    dm = MelodyDataModule(str(vocal_clips["melody"]), labelled_split=["labelled", "unlabelled"], unlabelled_split=None,
                          val_split="valid", remix=1.0, remix_accompaniment=1.0, remix_level_db=(-5.0, 5.0))
    dm.setup("fit")
    mixer = dm.mixer("remix")
    assert {e.split for e in dm.rows("remix")} == {"labelled", "unlabelled"}
    vocals, other = mixer.table.classes.index("vocals"), mixer.table.classes.index("accompaniment")
    levels, voiced = [], 0
    for i in range(12):
        ex = mixer.example(0, i)
        np.testing.assert_allclose(ex.mixture, ex.sources.sum(axis=0), atol=1e-6)
        if ex.sources[other].any() and ex.sources[vocals].any():
            rms = np.sqrt(np.mean(ex.sources[[vocals, other]] ** 2, axis=(1, 2)))
            levels.append(20 * np.log10(rms[0] / rms[1]))
        stem = next(s for s in ex.stems if mixer.table.labels[s][vocals])
        start = ex.starts[ex.stems.index(stem)]
        times, hz = read_f0(mixer.table.annotations[stem])
        expected = f0_on_grid(times, hz, start, PATCH)
        np.testing.assert_allclose(ex.f0, expected, rtol=1e-6)
        voiced += int((expected > 0).sum())
    assert len(levels) >= 8 and min(levels) >= -5.0 - 1e-3 and max(levels) <= 5.0 + 1e-3
    assert max(levels) - min(levels) > 3  # drawn, not fixed
    assert voiced > 100
    with pytest.raises(ValueError, match="level_db"):
        MixRecipe(level_class="vocals", level_db=(5.0, -5.0))


def test_a_share_of_the_unlabelled_songs_is_a_fixed_draw(melody_corpus):
    everything = {e.id for e in _dm(melody_corpus).rows("unlabelled")}
    two = [{e.id for e in _dm(melody_corpus, unlabelled_songs=2, seed=s).rows("unlabelled")} for s in (0, 0, 1, 2, 3)]
    assert all(len(x) == 2 and x <= everything for x in two) and two[0] == two[1]
    assert len({frozenset(x) for x in two}) > 1  # the seed draws them
    with pytest.raises(ValueError, match="unlabelled_songs=0"):
        _dm(melody_corpus, unlabelled_songs=0)
