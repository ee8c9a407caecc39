"""Every shipped config builds what it names (as `noisymss fit` does), its linked values agree, and
each training run draws new examples every epoch."""
from pathlib import Path

import lightning as L
import pytest
import torch

from noisymss.callbacks.relabel import RelabelCallback
from noisymss.experiments.runner import GPU_OVERLAYS
from noisymss.lightning_cli import build

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUNS = sorted(p.name for p in CONFIGS.glob("*.yaml"))
MELODY = {"noisy_student.yaml", "supervised.yaml", "mir1k_noisy_student.yaml", "mir1k_supervised.yaml", "release_melody.yaml",
          "melody_synth_pretrain.yaml"}
# the release and the pretraining train on a synthetic split too, which the test copy of MIR-1K lacks
EXTRA = {"release_melody.yaml": ["--data.init_args.labelled_split", "[labelled, unlabelled]"],
         "melody_synth_pretrain.yaml": ["--data.init_args.labelled_split", "labelled"]}


def _catalog(run: str, demo_corpus: Path, melody_corpus: Path, vocal_clips: dict, bach10_stems: Path) -> Path:
    """The test catalog a run file can train on: real-data runs get a generated copy of their layout."""
    if run.startswith("bach10_"):
        return bach10_stems
    if run in ("mir1k_noisy_student.yaml", "mir1k_supervised.yaml", "release_melody.yaml", "melody_synth_pretrain.yaml"):
        return vocal_clips["melody"]
    if run in ("mir1k_separator_xumx.yaml", "mir1k_classifier.yaml"):
        return vocal_clips["separation"]
    return (melody_corpus if run in MELODY else demo_corpus) / "catalog.csv"


def _cli(run: str, catalog: Path, tmp_path: Path, *extra: str):
    args = ["--config", str(CONFIGS / run), *EXTRA.get(run, []), *extra, "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.precision", "32-true", "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false", "--data.init_args.catalog", str(catalog)]
    return build(args, run=False)


def test_every_run_config_has_a_gpu_overlay():
    assert set(RUNS) == set(GPU_OVERLAYS)
    assert sorted(p.name for p in (CONFIGS / "gpu").glob("*.yaml")) == sorted(set(GPU_OVERLAYS.values()))


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu-overlay"])
@pytest.mark.parametrize("run", RUNS)
def test_config_instantiates_with_linked_values(run, gpu, demo_corpus, melody_corpus, vocal_clips, bach10_stems, tmp_path):
    extra = ["--config", str(CONFIGS / "gpu" / GPU_OVERLAYS[run])] if gpu else []
    cli = _cli(run, _catalog(run, demo_corpus, melody_corpus, vocal_clips, bach10_stems), tmp_path, *extra)
    model, data = cli.model, cli.datamodule
    assert type(model).__module__.startswith("noisymss.tasks.") and type(data).__module__.startswith("noisymss.")
    hp = model.hparams
    if hasattr(data, "recipe"):  # values written once, in the data config, reach the model
        assert list(data.classes) == list(hp.get("classes") or hp.get("sources"))
        assert hp["sample_rate"] == data.recipe.sample_rate
        if "segment" in hp:
            assert (hp["segment"], hp["channels"]) == (data.recipe.segment, data.recipe.channels)
    relabel = [c for c in cli.trainer.callbacks if isinstance(c, RelabelCallback)]
    for callback in relabel:  # the rounds split the run evenly (given, or derived at fit start)
        every = callback.every_n_epochs or cli.trainer.max_epochs // (callback.rounds + 1)
        assert cli.trainer.max_epochs == (callback.rounds + 1) * every


class _Draws(L.Callback):
    """Keeps the first training batch of each epoch."""

    def __init__(self):
        self.first: dict[int, dict] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.first.setdefault(trainer.current_epoch, {k: v.clone() for k, v in batch.items() if torch.is_tensor(v)})


@pytest.mark.parametrize("run", RUNS)
def test_consecutive_epochs_draw_different_examples(run, demo_corpus, melody_corpus, vocal_clips, bach10_stems, tmp_path):
    """Whatever the config's trainer flags: the relabel callbacks are dropped (their schedule needs
    more epochs), everything else is the shipped config."""
    cli = _cli(run, _catalog(run, demo_corpus, melody_corpus, vocal_clips, bach10_stems), tmp_path, "--trainer.callbacks=[]",
               "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0",
               "--trainer.enable_checkpointing", "false", "--data.init_args.batch_size", "2",
               "--data.init_args.num_workers", "0", "--data.init_args.train_examples", "4")
    draws = _Draws()
    cli.trainer.callbacks.append(draws)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert sorted(draws.first) == [0, 1]
    a, b = draws.first[0], draws.first[1]
    inputs = "audio" if run in MELODY else "mixture"
    assert a[inputs].shape == b[inputs].shape and not torch.equal(a[inputs], b[inputs])
