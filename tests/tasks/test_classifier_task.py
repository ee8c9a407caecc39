import lightning as L
import pytest
import torch

from noisymss.data.catalog import Catalog, CatalogError
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe
from noisymss.tasks.classifier import ClassifierTask

SR = 16000  # the timbres fixture's rate (conftest)


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
