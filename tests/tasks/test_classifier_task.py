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


def test_masking_leaves_out_each_class_s_largest_losses_in_training_only():
    torch.manual_seed(0)
    task = ClassifierTask(classes=["tone", "noise"], sample_rate=SR, robust="masking", quantile_schedule=[[0, 1.0], [2, 0.5]])
    batch = {"mixture": torch.randn(4, 1, SR), "label": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])}
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(task(batch["mixture"]), batch["label"], reduction="none")
    task.trainer = type("T", (), {"current_epoch": 2})  # past the schedule's step: keep the lower half per class
    loss, _, keep = task._losses(batch, robust=True)
    assert keep.tolist() == (losses <= losses.median(dim=0, keepdim=True).values).tolist()
    assert keep.sum(dim=0).tolist() == [2, 2] and loss.item() == pytest.approx(losses[keep].mean().item(), rel=1e-5)
    plain, _ = task.model_step(batch)  # validation and test: every cell counts
    assert plain.item() == pytest.approx(losses.mean().item(), rel=1e-5)
    task.trainer = type("T", (), {"current_epoch": 1})  # before the step: everything kept
    assert task._losses(batch, robust=True)[2].all()
    with pytest.raises(ValueError, match="robust 'median'"):
        ClassifierTask(classes=["tone", "noise"], sample_rate=SR, robust="median")
    with pytest.raises(ValueError, match="quantile"):
        ClassifierTask(classes=["tone", "noise"], sample_rate=SR, robust="masking", quantile_schedule=[[0, 0.0]])
