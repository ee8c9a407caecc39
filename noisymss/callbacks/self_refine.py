"""Self-refining rounds inside one `fit` (Koo et al. 2023): train on the labels in use, relabel the
stems with the model being trained, train on the new labels, for R rounds.

At the end of every N epochs (while rounds remain) the model scores every stem of the catalog alone
(`noisymss.refine`, sharded over DDP ranks through the shared relabel mechanism, the same labels on
every rank) and the DataModule switches to those labels, so the next epoch's mixtures and targets
use them. The round count is checkpointed here and the labels in the DataModule's state, so a run
resumed mid-round trains on the same refined labels. With `write_versions` each round is also
written beside the catalog as label version `<prefix><round>`.
"""
from __future__ import annotations

import lightning as L

from noisymss.callbacks.common import check_relabel_fit
from noisymss.refine import RefineSettings, refine_catalog, refine_report


class SelfRefine(L.Callback):
    """Args:
        every_n_epochs: epochs of training between relabels.
        rounds: relabels in the fit (R).
        threshold, window, hop, aggregate, silence_db, batch_size: as `noisymss refine` (window
            and hop default to the training segment and half of it).
        split: relabel only this split's stems (default: the training split; None in YAML = all).
        write_versions: also write each round's labels as a label version beside the catalog.
        prefix: name of those versions (`<prefix>1`, `<prefix>2`, ...); they must not exist yet.
    """

    def __init__(self, every_n_epochs: int = 4, rounds: int = 1, threshold: float | dict[str, float] = 0.5,
                 window: float | None = None, hop: float | None = None, aggregate: str = "mean", silence_db: float = -50.0,
                 batch_size: int = 16, split: str | None = "train", write_versions: bool = False, prefix: str = "selfrefine"):
        RefineSettings(aggregate=aggregate)  # an unknown aggregate fails here, before training
        self.every_n_epochs, self.rounds = every_n_epochs, rounds
        self.options = dict(threshold=threshold, silence_db=silence_db, aggregate=aggregate, batch_size=batch_size)
        self.window, self.hop, self.split = window, hop, split
        self.write_versions, self.prefix = write_versions, prefix
        self.round = 0
        self.history: list[dict] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        check_relabel_fit(trainer, "SelfRefine", "set_labels", "a datamodule of stems (noisymss.data.datamodule.MixDataModule)")
        trainer.datamodule.setup()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after a resumed run's state is restored, before any training: only rounds still to come count
        dm = trainer.datamodule
        if self.write_versions:
            taken = [f"{self.prefix}{r}" for r in range(self.round + 1, self.rounds + 1)
                     if f"{self.prefix}{r}" in dm.catalog.label_versions()]
            if taken:
                raise ValueError(f"label version(s) {', '.join(taken)} exist beside {dm.catalog.path}; "
                                 "choose another SelfRefine prefix")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs or self.round >= self.rounds or epoch >= trainer.max_epochs:
            return
        dm = trainer.datamodule
        recipe = dm.recipe
        window = self.window or recipe.segment
        settings = RefineSettings(sample_rate=recipe.sample_rate, channels=recipe.channels, window=window,
                                  hop=self.hop or window / 2, **self.options)
        split = dm.splits[0] if self.split == "train" else self.split
        version = f"{self.prefix}{self.round + 1}"
        was_training = pl_module.training
        pl_module.eval()
        labels, scores = refine_catalog(
            pl_module, dm.catalog, list(dm.classes), settings, version if self.write_versions else None,
            {"checkpoint": f"in fit, epoch {epoch}", "from_version": dm.label_version}, split=split,
            device=pl_module.device, progress=trainer.is_global_zero, write=trainer.is_global_zero, resumable=False)
        pl_module.train(was_training)
        self.round += 1
        dm.set_labels(version, labels)
        summary = refine_report(dm.catalog, list(dm.classes), labels, scores)[-1]
        record = {"refine/round": self.round, "refine/changed_stems": summary["changed_stems"],
                  "refine/not_scored": summary["not_scored"]}
        if "refined_exact_match" in summary:  # the truth is known (a generated corpus)
            record["refine/exact_match_vs_truth"] = summary["refined_exact_match"]
        self.history.append(record)
        for logger in trainer.loggers:
            logger.log_metrics(record, step=trainer.global_step)

    def state_dict(self) -> dict:
        return {"round": self.round, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.round, self.history = state["round"], state.get("history", [])
