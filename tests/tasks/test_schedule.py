import lightning as L
import pytest
import torch

from noisymss.tasks.schedule import warmup_cosine, with_schedule


def test_warmup_then_cosine_to_the_floor():
    f = warmup_cosine(100, warmup=0.1, floor=0.02)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)  # 10 warm-up steps
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.02 + 0.98 * 0.5)  # half way down the cosine
    assert f(100) == pytest.approx(0.02) and f(500) == pytest.approx(0.02)
    values = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


class _Tiny(L.LightningModule):
    def __init__(self, schedule):
        super().__init__()
        self.layer, self.schedule, self.rates = torch.nn.Linear(2, 1), schedule, []

    def training_step(self, batch, _):
        self.rates.append(self.optimizers().param_groups[0]["lr"])
        return self.layer(batch[0]).pow(2).mean()

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), batch_size=2)

    def configure_optimizers(self):
        return with_schedule(self, torch.optim.SGD(self.parameters(), lr=1.0), self.schedule, warmup=0.1)


def test_a_real_fit_steps_the_schedule_per_batch_and_spans_schedule_epochs(tmp_path):
    quiet = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                 enable_model_summary=False, default_root_dir=tmp_path)
    whole = _Tiny("cosine")
    L.Trainer(max_epochs=4, **quiet).fit(whole)
    f = warmup_cosine(40, 0.1)
    assert whole.rates == pytest.approx([f(s) for s in range(40)])
    round_ = _Tiny("cosine")
    round_.schedule_epochs = 2  # as TeacherStudent sets it: one student's epochs
    L.Trainer(max_epochs=4, **quiet).fit(round_)
    assert round_.rates[:20] == pytest.approx([warmup_cosine(20, 0.1)(s) for s in range(20)])
    flat = _Tiny("constant")
    L.Trainer(max_epochs=1, **quiet).fit(flat)
    assert flat.rates == [1.0] * 10
    with pytest.raises(ValueError, match="lr_schedule='linear'"):
        L.Trainer(max_epochs=1, **quiet).fit(_Tiny("linear"))
