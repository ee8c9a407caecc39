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
    assert len(dm.songs["labelled"]) == 2 and len(dm.songs["unlabelled"]) == 3 and len(dm.songs["valid"]) == 1
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
    dm.set_pseudo_labels("teacher0", 1, pseudo)
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
