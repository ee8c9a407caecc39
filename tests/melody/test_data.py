import numpy as np
import pytest
import torch

from noisymss.data.catalog import CatalogError
from noisymss.melody.data import PATCH_SAMPLES, MelodyDataModule, check_mode
from noisymss.melody.features import PATCH
from noisymss.melody.pitch import hz_to_class


def _dm(corpus, **kw):
    return MelodyDataModule(str(corpus / "catalog.csv"), train_examples=16, batch_size=8, **kw)


def test_labelled_patches_carry_the_f0_classes(melody_corpus):
    dm = _dm(melody_corpus)
    dm.setup()
    assert len(dm.songs["labelled"]) == 2 and len(dm.songs["valid"]) == 1
    assert "unlabelled" not in dm.songs  # decoded only when a teacher asks for them
    assert len(dm.unlabelled_audio()) == 3 and len(dm.songs["unlabelled"]) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (8, PATCH_SAMPLES) and batch["target_idx"].shape == (8, PATCH, 8)
    assert batch["labelled"].all()  # no pseudo labels yet: labelled only
    voiced = batch["target_idx"][..., 0] > 0
    assert voiced.any() and batch["mask"].all()
    torch.testing.assert_close(batch["target_prob"][..., 0], torch.ones(8, PATCH))


def test_patch_targets_align_with_the_annotation(melody_corpus):
    dm = _dm(melody_corpus)
    dm.setup()
    ds = dm.train_dataloader().dataset
    song = dm.songs["labelled"]
    for i in range(5):
        item = ds[i]
        # find the patch in its song and check the frames' classes
        for s in range(len(song)):
            starts = [k for k in range(0, len(song.audio[s]) - PATCH_SAMPLES, 80)
                      if np.array_equal(song.audio[s][k:k + PATCH_SAMPLES], item["audio"].numpy())]
            if starts:
                f0 = song.f0[s][starts[0] // 80:starts[0] // 80 + PATCH]
                np.testing.assert_array_equal(item["target_idx"][:, 0].numpy(), hz_to_class(f0))
                break
        else:
            pytest.fail("patch not found in any labelled song")


def test_pseudo_labels_are_mixed_in_and_kept_in_state(melody_corpus):
    dm = _dm(melody_corpus, unlabelled_ratio=3.0)
    dm.setup()
    heard = dm.unlabelled_audio()
    pseudo = {k: (np.full((len(x) // 80 + 1, 8), 100, np.int16), np.full((len(x) // 80 + 1, 8), 0.125, np.float16))
              for k, x in heard.items()}
    dm.iteration = 1
    dm.set_labels("teacher0", pseudo)
    batch = next(iter(dm.train_dataloader()))
    assert (~batch["labelled"]).sum() >= 3
    unl = ~batch["labelled"]
    assert torch.all(batch["target_idx"][unl] == 100)
    state = dm.state_dict()
    other = _dm(melody_corpus)
    other.load_state_dict(state)
    assert other.label_version == "teacher0" and other.iteration == 1 and set(other.pseudo) == set(pseudo)


def test_noisy_teacher_student_noise_is_fixed_per_song_and_iteration(melody_corpus):
    dm = _dm(melody_corpus)
    dm.setup()
    clean = dm.unlabelled_audio()
    dm.noise_mode, dm.iteration = "noisy_teacher_student", 1
    a = dm.unlabelled_audio()
    b = dm.unlabelled_audio()
    key = next(iter(clean))
    assert a[key] is b[key] and not np.allclose(a[key], clean[key])
    dm.iteration = 2
    assert not np.allclose(dm.unlabelled_audio()[key], a[key])


def test_bad_mode_and_split_are_one_line_errors(melody_corpus):
    with pytest.raises(ValueError, match="unknown teacher-student mode 'noisiest'"):
        check_mode("noisiest")
    with pytest.raises(CatalogError, match="no mixtures in split 'nope'"):
        _dm(melody_corpus, labelled_split="nope").setup()


def test_remixed_patches_of_one_song_are_its_mixture_with_aligned_targets(melody_corpus):
    """Remixing all of a song's stems in time gives back its mixture (the stems sum to it exactly),
    so each remixed patch must be found in a labelled mixture, with the targets of that place."""
    from scipy.signal import correlate

    from noisymss.data.annotations import f0_on_grid, read_f0
    from noisymss.data.catalog import Catalog

    dm = _dm(melody_corpus, remix=1.0, remix_accompaniment=1.0, remix_same_song=True)
    dm.setup()
    ds = dm.train_dataloader().dataset
    songs, cat = dm.songs["labelled"], Catalog.load(melody_corpus / "catalog.csv")
    annotation = {e.id: e.annotation for e in cat.mixtures()}
    voiced = 0
    for i in range(6):
        item = ds[i]
        assert torch.equal(item["audio"], ds[i]["audio"])  # a pure function of the index
        patch = item["audio"].numpy().astype(np.float64)
        def similarity(x):  # normalised cross-correlation at every start
            energy = np.convolve(x.astype(np.float64) ** 2, np.ones(PATCH_SAMPLES), mode="valid")
            return correlate(x, patch, mode="valid") / np.sqrt(energy * np.sum(patch**2) + 1e-12)

        ranked = sorted(((float(np.max(similarity(x))), s) for s, x in enumerate(songs.audio)), reverse=True)
        best = ranked[0]
        song = songs.audio[best[1]]
        start = int(np.argmax(similarity(song)))
        # the song at one moment, short of 1 by the sub-sample offset of a start between 8 kHz samples
        # (up to half a sample: about 0.97 where the patch has energy near 4 kHz); other songs fall far below
        assert best[0] > 0.95 and ranked[1][0] < 0.9, ranked
        times, hz = read_f0(cat.resolve(annotation[songs.ids[best[1]]]))
        expected = hz_to_class(f0_on_grid(times, hz, start / 8000, PATCH))
        # that sub-sample offset may move a note change by one frame
        assert np.sum(item["target_idx"][:, 0].numpy() != expected) <= 2
        voiced += int((expected > 0).sum())
    assert voiced > 30


def test_remix_draws_accompaniment_from_other_songs_and_checks_its_input(melody_corpus, tmp_path):
    dm = _dm(melody_corpus, remix=1.0)
    dm.setup()
    mixer = dm.remixer()
    songs_per_example = [len(set(mixer.table.song[mixer.example(0, i).stems])) for i in range(20)]
    assert max(songs_per_example) > 1  # cross-song backings
    batch = next(iter(dm.train_dataloader()))
    assert batch["labelled"].all() and batch["mask"].float().mean() > 0.5
    with pytest.raises(ValueError, match="remix=1.5"):
        _dm(melody_corpus, remix=1.5)
