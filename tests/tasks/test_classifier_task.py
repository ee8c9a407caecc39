import lightning as L
import numpy as np
import pytest
import torch

from noisymss.audio.io import write_audio
from noisymss.data.catalog import Catalog, CatalogError, Entry
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe
from noisymss.tasks.classifier import ClassifierTask

SR = 16000


@pytest.fixture(scope="module")
def timbres(tmp_path_factory):
    """Two timbres as stems: harmonic tones ('tone') and band-passed noise ('noise'); one 'noise' stem is given as 'tone'."""
    root = tmp_path_factory.mktemp("timbres")
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    entries = []
    for i in range(12):
        split = "train" if i < 8 else "valid"
        if i % 2 == 0:
            f = rng.uniform(150, 600)
            audio = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6)) * 0.2
            true = ("tone",)
        else:
            audio = np.convolve(rng.standard_normal(len(t)), np.hanning(9), "same") * 0.03  # tones stay audible in mixes
            true = ("noise",)
        given = ("tone",) if i == 1 else true  # one mislabelled training stem
        path = write_audio(root / f"s{i}.wav", audio[None].astype(np.float32), SR)
        entries.append(Entry(f"s{i}/{true[0]}", f"s{i}", str(path), "stem", 2.0, SR, 1, split, given, true))
    Catalog(entries, root).save(root / "catalog.csv")
    return root / "catalog.csv"


def _dm(catalog, **kw):
    recipe = MixRecipe(segment=1.0, sample_rate=SR, channels=1, class_prob=0.5)
    return MixDataModule(str(catalog), classes=["tone", "noise"], recipe=recipe, train_examples=128, val_examples=64,
                         batch_size=16, **kw)


def test_a_small_classifier_learns_two_timbres(timbres, tmp_path):
    torch.manual_seed(0)
    task = ClassifierTask(classes=["tone", "noise"], sample_rate=SR, lr=3e-3)
    dm = _dm(timbres, label_version="true", eval_label_version="true")  # the clean labels: the point is learning
    quiet = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                 enable_model_summary=False, default_root_dir=tmp_path)
    before = L.Trainer(**quiet).validate(task, dm, verbose=False)[0]
    L.Trainer(max_epochs=14, num_sanity_val_steps=0, **quiet).fit(task, dm)
    after = L.Trainer(**quiet).validate(task, dm, verbose=False)[0]
    assert after["val/exact_match"] >= 90 and after["val/exact_match"] > before["val/exact_match"] + 20, (before, after)
    assert after["val/f1/tone"] > 90 and after["val/f1/noise"] > 90 and after["val/mAP"] > 95


def test_validation_can_use_the_truth_while_training_uses_the_given_labels(timbres):
    dm = _dm(timbres, eval_label_version="true")
    dm.setup()
    assert dm.mixer("train").table.labels[[i for i in range(8) if dm.mixer("train").table.paths[i].endswith("s1.wav")][0]].tolist() == [1, 0]
    cat = Catalog.load(timbres)
    assert cat.labels("true")["s1/noise"] == ("noise",) and cat.labels()["s1/noise"] == ("tone",)
    with pytest.raises(CatalogError, match="reserved"):
        cat.write_labels("true", cat.labels("true"), {"producer": "test"})


def test_classes_of_model_and_data_must_match(timbres, tmp_path):
    task = ClassifierTask(classes=["noise", "tone"], sample_rate=SR)
    with pytest.raises(ValueError, match="set model.classes to match data.classes"):
        L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                  default_root_dir=tmp_path).fit(task, _dm(timbres))
    with pytest.raises(ValueError, match="size 'huge'"):
        ClassifierTask(size="huge")
