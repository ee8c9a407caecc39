"""Melody task: JDC trained on f0-labelled and teacher-labelled patches, scored with mir_eval on whole songs."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from noisymss.melody.features import HOP, log_magnitude, normalize
from noisymss.melody.inference import VOICING_THRESHOLDS, Decoding, extract_f0, patch_outputs, patch_windows, song_f0
from noisymss.melody.pitch import PitchGrid
from noisymss.melody.plots import f0_figure
from noisymss.metrics.melody import METRICS, melody_scores
from noisymss.models.jdc import JDC
from noisymss.tasks.predict import FilePredictions
from noisymss.tasks.schedule import with_schedule


def melody_loss(pitch_logits: torch.Tensor, voice_logp: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                alpha: float = 0.5) -> torch.Tensor:
    """L_pitch + alpha * L_voice (JDC's joint loss, Kum & Nam 2019), as a weighted mean over frames.

    Args:
        pitch_logits: (B, T, C); voice_logp: (B, T, 2) log-probabilities of the fused voicing output.
        target: (B, T, C) pitch target distribution (Gaussian-blurred labels or a teacher's); its
            class-0 mass is the non-voice probability, which also makes the voicing target.
        weight: (B, T) frame weights (0 = no target).
    """
    pitch = -(target * pitch_logits.log_softmax(dim=-1)).sum(dim=-1)
    unvoiced = target[..., 0] / target.sum(dim=-1).clamp(min=1e-8)
    voice = -(unvoiced * voice_logp[..., 0] + (1 - unvoiced) * voice_logp[..., 1])
    return ((pitch + alpha * voice) * weight).sum() / weight.sum().clamp(min=1e-8)


class MelodyTask(FilePredictions, L.LightningModule):
    """JDC melody extraction, supervised and teacher-student.

    Args:
        width: JDC width (1.0 = the published 4.2 M-parameter model; 0.125 in the CPU configs).
        pitch_range: (low, high) MIDI of the pitch classes (JDC: 38-83; real singers reach lower).
        lr, weight_decay: AdamW settings.
        lr_schedule, warmup: 'cosine' (linear warm-up over that fraction of the steps, then cosine
            decay; restarted with each student) or 'constant'.
        alpha: voicing loss weight (0.5, as in JDC).
        sigma, radius, normalize_targets: Gaussian label blur; normalised targets make every frame
            weigh the same (the paper's unnormalised targets weigh voiced frames ~2.5×).
        unlabelled_weight: weight of pseudo-labelled frames (λ).
        hard_pseudo_labels: train on the teacher's argmax (Gaussian-blurred) instead of its distribution.
        median: median filter length at decoding (5, as JDC).
        voicing_threshold: None: JDC's argmax decides voicing; t: voiced where the fused voicing
            output is above t (`noisymss.melody.inference.Decoding`).
        calibrate_voicing: every validation picks the threshold (among `VOICING_THRESHOLDS`) with
            the best mean OA on the validation songs and logs the scores at it; checkpoints keep it,
            so a test or a release decodes as the chosen model was validated, and a teacher's
            pseudo labels are voiced where its calibrated decision says so. The argmax under-calls
            voicing on real singing, and a student trained on that bias shrinks voicing further.
        plot_songs: songs per validation (and test) whose spectrogram with reference and estimated
            f0 goes to loggers that take images (W&B).
        pretrained: start from these weights: 'released' (the model shipped with noisymss), a
            .safetensors release or a melody checkpoint; its width and pitch range must be this task's.
    """

    # the validation score that picks checkpoints/best.ckpt (noisymss.trainer)
    monitor = ("val/OA", "max")

    def __init__(
        self,
        width: float = 0.25,
        pitch_range: tuple[float, float] = (38.0, 83.0),
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        lr_schedule: str = "cosine",
        warmup: float = 0.05,
        alpha: float = 0.5,
        sigma: float = 1.0,
        radius: int = 3,
        normalize_targets: bool = True,
        unlabelled_weight: float = 1.0,
        hard_pseudo_labels: bool = False,
        median: int = 5,
        voicing_threshold: float | None = None,
        calibrate_voicing: bool = False,
        plot_songs: int = 2,
        pretrained: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.grid = PitchGrid(*pitch_range)
        self.model = self._network(width)
        if pretrained:
            self._load_pretrained(pretrained)
        self.iteration = 0  # set by the TeacherStudent callback; metrics are also logged per iteration
        self._scores: list[dict[float | None, dict[str, float]]] = []  # per song: {threshold: scores}
        self._plots: list[tuple[str, torch.Tensor, np.ndarray, dict]] = []  # (song, audio, ref f0, {threshold: est f0})

    @property
    def decoding(self) -> Decoding:
        hp = self.hparams
        return Decoding(self.grid, hp.median, hp.get("voicing_threshold"))

    def _network(self, width: float) -> JDC:
        return JDC.small(width, n_classes=self.grid.n_classes)  # width 1.0 is the published JDC

    def _load_pretrained(self, source: str) -> None:
        from noisymss.melody.released import load_weights

        weights, settings = load_weights(None if source == "released" else source)
        mine = {"width": self.hparams.width, "pitch_range": list(self.hparams.pitch_range)}
        theirs = {k: list(v) if k == "pitch_range" else v for k, v in settings.items() if k in mine}
        if any(theirs.get(k, v) != v for k, v in mine.items()):
            raise ValueError(f"pretrained={source}: its weights are for {theirs}, the model is {mine}; "
                             f"set --model.init_args.width and pitch_range to match")
        self.model.load_state_dict(weights)

    # ------------------------------------------------------------- training
    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, samples) 8 kHz patches → pitch logits (B, T, C), voicing log-probs (B, T, 2)."""
        return self.model(normalize(log_magnitude(audio))[:, None])

    def targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense (B, T, C) targets and (B, T) frame weights from a patch batch."""
        hp = self.hparams
        idx, prob, labelled = batch["target_idx"], batch["target_prob"], batch["labelled"]
        grid = self.grid
        truth = torch.from_numpy(grid.hz_to_class(batch["f0"].cpu().numpy())).to(idx.device)
        blurred = grid.gaussian_targets(truth, hp.sigma, hp.radius, hp.normalize_targets)
        if hp.hard_pseudo_labels:
            top = idx.gather(-1, prob.argmax(-1, keepdim=True))[..., 0]
            soft = grid.gaussian_targets(top, hp.sigma, hp.radius, hp.normalize_targets)
        else:
            soft = torch.zeros(idx.shape[:-1] + (grid.n_classes,), device=idx.device).scatter_add_(-1, idx, prob.float())
            soft = soft / soft.sum(-1, keepdim=True).clamp(min=1e-8)
        target = torch.where(labelled[:, None, None], blurred, soft)
        weight = batch["mask"].float() * torch.where(labelled, 1.0, hp.unlabelled_weight)[:, None]
        return target, weight

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The loss of a patch batch and the outputs it came from: pitch logits (B, T, C), voicing log-probs (B, T, 2)."""
        pitch_logits, voice_logp = self(batch["audio"])
        target, weight = self.targets(batch)
        frames = min(pitch_logits.shape[1], target.shape[1])
        loss = melody_loss(pitch_logits[:, :frames], voice_logp[:, :frames], target[:, :frames], weight[:, :frames],
                           self.hparams.alpha)
        return loss, (pitch_logits, voice_logp)

    def training_step(self, batch: dict[str, torch.Tensor], _) -> torch.Tensor:
        loss, _ = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/unlabelled_fraction", (~batch["labelled"]).float().mean())
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return with_schedule(self, optimizer, hp.lr_schedule, hp.warmup)

    def reset_student(self, seed: int, width: float | None = None) -> None:
        """Re-initialises the network, at a new width if one is given (Noisy Student's larger student).

        The same seed on every rank gives every DDP replica the same start. A new width replaces
        the network (new parameters: the caller rebuilds optimisers and any DDP wrapper) and is
        recorded in `hparams`, so checkpoints and `load_melody_model` build the right size.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if width is not None and width != self.hparams.width:
                self.model = self._network(width).to(self.device)
                self.hparams.width = width
                return
            for module in self.model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A checkpoint of a grown student holds a wider network than the config builds: match it
        # before Lightning loads the weights (this hook runs first, before any DDP wrapping).
        saved = checkpoint.get("hyper_parameters", {})
        width = saved.get("width", self.hparams.width)
        if width != self.hparams.width:
            self.model = self._network(width).to(self.device)
            self.hparams.width = width
        if self.hparams.get("calibrate_voicing"):  # the threshold chosen with these weights, not the config's
            self.hparams.voicing_threshold = saved.get("voicing_threshold")

    # ------------------------------------------------------------ inference
    def predict_song(self, audio: torch.Tensor) -> np.ndarray:
        """f0 in Hz every 10 ms for one 8 kHz mono song (samples,)."""
        return song_f0(self.model, audio, self.decoding)

    predict_suffix = ".f0.txt"

    def predict_file(self, path: Path, target: Path) -> list[Path]:
        """Writes the f0 of one audio file as mir_eval two-column text (as `noisymss melody`)."""
        from noisymss.data.annotations import write_f0

        times, f0 = extract_f0(self.model, path, self.decoding)
        write_f0(target, times, f0)
        return [target]

    @torch.no_grad()
    def pseudo_label(self, audio: np.ndarray, top_k: int = 8, confidence: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
        """The teacher's view of one song: top-k classes and probabilities per frame, and its voiced fraction.

        With a voicing threshold, voicing is the teacher's decision at it: an unvoiced frame's target
        is class 0, a voiced frame's the teacher's pitch distribution without class 0. Without one,
        the pitch softmax as it is (its class-0 mass is the voicing target). Frames whose top
        probability is below `confidence` get all-zero probabilities (no target).
        """
        pitch, voice = self._song_outputs(torch.from_numpy(audio))
        probs = pitch.float().softmax(dim=-1)
        threshold = self.hparams.get("voicing_threshold")
        if threshold is None:
            voiced = probs.argmax(-1) > 0
        else:
            voiced = voice[:, 1].exp() > threshold
            probs[:, 0] = 0.0
            probs = torch.where(voiced[:, None], probs / probs.sum(-1, keepdim=True).clamp(min=1e-12),
                                torch.nn.functional.one_hot(torch.zeros_like(voiced, dtype=torch.long), probs.shape[-1]).float())
        top_p, top_i = probs.topk(top_k, dim=-1)
        top_p[top_p[:, 0] < confidence] = 0.0
        return top_i.to(torch.int16).cpu().numpy(), top_p.to(torch.float16).cpu().numpy(), float(voiced.float().mean())

    def _song_outputs(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pitch logits (frames, C) and voicing log-probabilities (frames, 2) of one 8 kHz song (samples,)."""
        pitch, voice = patch_outputs(self.model, patch_windows(audio))
        frames = 1 + audio.shape[-1] // HOP
        return pitch[:frames], voice[:frames]

    # ----------------------------------------------------------- evaluation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        audio, ref = batch["audio"][0], batch["f0"][0].cpu().numpy()
        pitch, voice = self._song_outputs(audio)
        tracks = {}
        for t in self._thresholds():
            decoding = dataclasses.replace(self.decoding, voicing_threshold=t)
            tracks[t] = decoding.track(decoding.frame_hz(pitch, voice))
        self._scores.append({t: melody_scores(ref, est) for t, est in tracks.items()})
        if batch_idx < self.hparams.plot_songs and any(hasattr(lg, "log_image") for lg in self.loggers):
            self._plots.append((batch.get("id", [str(batch_idx)])[0], audio, ref, tracks))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def _log_scores(self, stage: str) -> None:
        scores, self._scores = self._scores, []
        thresholds = self._thresholds()
        means = {t: {m: float(np.mean([s[t][m] for s in scores])) if scores else float("nan") for m in METRICS}
                 for t in thresholds}
        chosen = thresholds[0]
        if len(thresholds) > 1:
            # every rank takes the same threshold: the best OA averaged over ranks
            oa = self.trainer.strategy.reduce(torch.tensor([means[t]["OA"] for t in thresholds], device=self.device),
                                              reduce_op="mean")
            chosen = thresholds[int(torch.nan_to_num(oa, nan=-1.0).argmax())]
            if not self.trainer.sanity_checking:
                self.hparams.voicing_threshold = chosen
            self.log(f"{stage}/voicing_threshold", math.nan if chosen is None else chosen, sync_dist=True)
        self._log_plots(stage, chosen)
        for name in METRICS:
            # every rank logs (sync_dist is a collective): per-rank song means, averaged over ranks
            self.log(f"{stage}/{name}", means[chosen][name], sync_dist=True, prog_bar=name == "OA")
            self.log(f"{stage}_iter{self.iteration}/{name}", means[chosen][name], sync_dist=True)

    def _thresholds(self) -> tuple[float | None, ...]:
        """The voicing thresholds a validation or test scores: every candidate while calibrating
        (validation, with calibrate_voicing), else the one in use."""
        calibrating = self.hparams.get("calibrate_voicing") and (self.trainer.validating or self.trainer.sanity_checking)
        return VOICING_THRESHOLDS if calibrating else (self.hparams.get("voicing_threshold"),)

    def _log_plots(self, stage: str, threshold: float | None) -> None:
        plots, self._plots = self._plots, []
        if not plots or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return  # image logging is no collective: rank 0 shows its own songs
        images = [f0_figure(log_magnitude(audio[None])[0].cpu().numpy(), ref, tracks[threshold]) for _, audio, ref, tracks in plots]
        captions = [f"{song} (iteration {self.iteration}, epoch {self.current_epoch})" for song, *_ in plots]
        for logger in self.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=f"{stage}/f0", images=images, caption=captions, step=self.global_step)
