"""Self-refining rounds inside one `fit` (Koo et al. 2023): train on the labels in use, relabel the
stems with the model being trained, train on the new labels, for R rounds.

At the end of every N epochs (while rounds remain) the model scores every stem of the catalog alone
(`noisymss.refine`, sharded over DDP ranks, the same labels on every rank) and the DataModule
switches to those labels, so the next epoch's mixtures and targets use them. The lifecycle
(schedule, eval mode, state, logging) is `RelabelCallback`'s. Every round prints (and logs to W&B)
its flip table; with `write_versions` it is also written beside the catalog as label version
`<prefix><round>`, with its probabilities and flips.
"""
from __future__ import annotations

import lightning as L

from noisymss.callbacks.relabel import RelabelCallback
from noisymss.refine import RefineSettings, flip_table, format_report, refine_catalog, refine_report


class SelfRefine(RelabelCallback):
    """Args:
        every_n_epochs: epochs of training between relabels.
        rounds: relabels in the fit (R).
        threshold, window, hop, aggregate, silence_db, batch_size: as `noisymss refine` (window
            and hop default to the training segment and half of it).
        split: relabel only this split's stems (default: the training split; None in YAML = all).
        write_versions: also write each round's labels as a label version beside the catalog.
        prefix: name of those versions (`<prefix>1`, `<prefix>2`, ...); they must not exist yet.
    """

    name, log_prefix, round_name = "SelfRefine", "refine", "round"

    def __init__(self, every_n_epochs: int = 4, rounds: int = 1, threshold: float | dict[str, float] = 0.5,
                 window: float | None = None, hop: float | None = None, aggregate: str = "mean", silence_db: float = -50.0,
                 batch_size: int = 16, split: str | None = "train", write_versions: bool = False, prefix: str = "selfrefine"):
        super().__init__(every_n_epochs, rounds)
        RefineSettings(aggregate=aggregate)  # an unknown aggregate fails here, before training
        self.options = dict(threshold=threshold, silence_db=silence_db, aggregate=aggregate, batch_size=batch_size)
        self.window, self.hop, self.split = window, hop, split
        self.write_versions, self.prefix = write_versions, prefix

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            trainer.datamodule.setup()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after a resumed run's state is restored: only rounds still to come need free names
        dm = trainer.datamodule
        if self.write_versions:
            taken = [f"{self.prefix}{r}" for r in range(self.round + 1, self.rounds + 1)
                     if f"{self.prefix}{r}" in dm.catalog.label_versions()]
            if taken:
                raise ValueError(f"label version(s) {', '.join(taken)} exist beside {dm.catalog.path}; "
                                 "choose another SelfRefine prefix")

    def relabel(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int):
        dm = trainer.datamodule
        recipe = dm.recipe
        window = self.window or recipe.segment
        settings = RefineSettings(sample_rate=recipe.sample_rate, channels=recipe.channels, window=window,
                                  hop=self.hop or window / 2, **self.options)
        split = dm.splits[0] if self.split == "train" else self.split
        version = f"{self.prefix}{self.round + 1}"
        labels, scores = refine_catalog(
            pl_module, dm.catalog, list(dm.classes), settings, version if self.write_versions else None,
            {"checkpoint": f"in fit, epoch {epoch}", "from_version": dm.label_version}, split=split,
            device=pl_module.device, progress=trainer.is_global_zero, write=trainer.is_global_zero, resumable=False)
        flips = flip_table(dm.labels, labels, sorted(scores))  # from the labels this round trained on
        if trainer.is_global_zero:
            print(f"self-refine round {self.round + 1} (epoch {epoch}): stems from -> to labels\n{format_report(flips)}")
            for logger in trainer.loggers:
                if hasattr(logger, "log_table"):  # W&B
                    logger.log_table(f"refine/flips_round{self.round + 1}", columns=["from", "to", "stems"],
                                     data=[list(r.values()) for r in flips])
        summary = refine_report(dm.catalog, list(dm.classes), labels, scores)[-1]
        record = {"refine/changed_stems": summary["changed_stems"], "refine/not_scored": summary["not_scored"]}
        if "refined_exact_match" in summary:  # the truth is known (a generated corpus)
            record["refine/exact_match_vs_truth"] = summary["refined_exact_match"]
        return version, labels, record
