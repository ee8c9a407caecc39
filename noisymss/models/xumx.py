"""CrossNet-Open-Unmix (X-UMX): Open-Unmix branches coupled by averaging (Sawata et al., ICASSP 2021).

One Open-Unmix network per source (Stöter et al., JOSS 2019) maps the mixture magnitude
spectrogram to a source magnitude. X-UMX adds two "bridges" without new parameters: every
source's LSTM reads the *average* of all sources' encoder outputs, and every source's decoder
reads the *average* of all sources' (encoder ‖ LSTM) features. `bridge=False` gives plain,
independent UMX branches. The paper's other two ideas, the multi-domain and combination losses,
are training losses: `noisymss.separation.losses.MultiDomainLoss`.

Layout: audio (B, C, T); spectrograms (B, C, F, N) with F = n_fft // 2 + 1 bins and N frames;
source axis S after the batch axis.
"""
from __future__ import annotations

import torch
from torch import nn

from noisymss.audio.wiener import wiener

# "published": the paper's (and UMX's) setting; "small": trains on one CPU core (see `XUMX.small`).
SIZES: dict[str, dict] = {
    "small": dict(n_fft=1024, hop=256, hidden=32, layers=1),
    "published": dict(n_fft=4096, hop=1024, hidden=512, layers=3),
}


def bandwidth_to_max_bin(sample_rate: int, n_fft: int, bandwidth: float) -> int:
    """Number of STFT bins whose centre frequency is at most `bandwidth` Hz (at least 1)."""
    bins = int(bandwidth * n_fft / sample_rate) + 1
    return max(1, min(bins, n_fft // 2 + 1))


class _Branch(nn.Module):
    """One source's Open-Unmix network, split in three so the bridges can sit between the parts.

    Args:
        channels: audio channels C (the encoder sees all channels of a frame at once).
        bins: F, the decoder's output bins.
        max_bin: the encoder's input bins (the band above is not looked at, but is still estimated).
        hidden: feature width H (even: the BLSTM has H / 2 units per direction).
        layers: stacked BLSTM layers.
        dropout: between BLSTM layers (UMX: 0.4 when there is more than one).
    """

    def __init__(self, channels: int, bins: int, max_bin: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.channels, self.bins, self.max_bin, self.hidden = channels, bins, max_bin, hidden
        # Learnable input standardisation per bin; UMX initialises these from dataset statistics,
        # here from (0, 1) and the BatchNorm after fc1 takes care of the scale early in training.
        self.input_mean = nn.Parameter(torch.zeros(max_bin))
        self.input_scale = nn.Parameter(torch.ones(max_bin))
        # No biases before a BatchNorm: its shift makes them redundant.
        self.fc1 = nn.Linear(channels * max_bin, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.fc2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.fc3 = nn.Linear(hidden, channels * bins, bias=False)
        self.bn3 = nn.BatchNorm1d(channels * bins)
        self.output_scale = nn.Parameter(torch.ones(bins))
        self.output_mean = nn.Parameter(torch.ones(bins))

    def encode(self, mag: torch.Tensor) -> torch.Tensor:
        """(B, N, C, F) mixture magnitude → (B, N, H) in [-1, 1]."""
        b, n = mag.shape[:2]
        x = (mag[..., : self.max_bin] + self.input_mean) * self.input_scale
        x = self.bn1(self.fc1(x.reshape(b * n, -1)))
        return torch.tanh(x).reshape(b, n, self.hidden)

    def recur(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, H) → (B, N, H): the BLSTM over frames."""
        return self.lstm(x)[0]

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, 2H) features → (B, N, C, F) non-negative mask."""
        b, n = x.shape[:2]
        x = torch.relu(self.bn2(self.fc2(x.reshape(b * n, -1))))
        x = self.bn3(self.fc3(x)).reshape(b, n, self.channels, self.bins)
        return torch.relu(x * self.output_scale + self.output_mean)


class XUMX(nn.Module):
    """X-UMX source separator on waveforms.

    Args:
        sources: source names; one branch each, outputs in this order.
        audio_channels: C (2 for stereo).
        n_fft, hop: STFT size and hop (periodic Hann window, centred frames).
        hidden: feature width of each branch (even).
        layers: stacked BLSTM layers per branch.
        max_bin: bins the encoders look at; default: those up to 16 kHz at `sample_rate` (as UMX's
            bandwidth setting). The decoders always estimate every bin.
        sample_rate: only used for the default `max_bin`.
        bridge: average encoder and LSTM features across sources (X-UMX); False: parallel UMX.
        wiener_iters: multichannel Wiener EM iterations applied in eval mode (0: mixture phase only).
        dropout: between BLSTM layers.

    Shapes: forward (B, C, T) → (B, S, C, T); forward_spec (B, C, T) → (B, S, C, F, N) magnitudes
    and the (B, C, F, N) complex mixture STFT.
    """

    def __init__(self, sources: list[str], audio_channels: int = 2, n_fft: int = 4096, hop: int = 1024,
                 hidden: int = 512, layers: int = 3, max_bin: int | None = None, sample_rate: int = 44100,
                 bridge: bool = True, wiener_iters: int = 0, dropout: float = 0.4):
        super().__init__()
        if not sources:
            raise ValueError("XUMX needs at least one source")
        if hidden % 2:
            raise ValueError(f"hidden={hidden}: must be even (the BLSTM has hidden / 2 units per direction)")
        self.sources = list(sources)
        self.audio_channels, self.n_fft, self.hop = audio_channels, n_fft, hop
        self.bins = n_fft // 2 + 1
        self.max_bin = max_bin if max_bin is not None else bandwidth_to_max_bin(sample_rate, n_fft, 16000.0)
        if not 1 <= self.max_bin <= self.bins:
            raise ValueError(f"max_bin={self.max_bin}: must lie in 1..{self.bins}")
        self.sample_rate, self.bridge, self.wiener_iters = sample_rate, bridge, wiener_iters
        self.branches = nn.ModuleList(
            _Branch(audio_channels, self.bins, self.max_bin, hidden, layers, dropout) for _ in self.sources
        )
        # A buffer so it follows .to(device); not persistent: it is fixed by n_fft, not learned.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @classmethod
    def from_size(cls, size: str, **kwargs) -> "XUMX":
        """A model of a named size ("small" | "published"); `kwargs` (sources first) override it."""
        if size not in SIZES:
            raise ValueError(f"X-UMX size {size!r}: choose one of {', '.join(SIZES)}")
        return cls(**{**SIZES[size], **kwargs})

    @classmethod
    def small(cls, sources: list[str], **kwargs) -> "XUMX":
        """n_fft 1024, hop 256, hidden 32, one BLSTM layer: 69 k parameters per source (CPU-sized)."""
        return cls.from_size("small", sources=sources, **kwargs)

    @classmethod
    def published(cls, sources: list[str], **kwargs) -> "XUMX":
        """The paper's size: n_fft 4096, hop 1024, hidden 512, 3 BLSTM layers, 16 kHz bandwidth."""
        return cls.from_size("published", sources=sources, **kwargs)

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(..., T) real → (..., F, N) complex, N = T // hop + 1 (zero padding at the edges)."""
        shape = audio.shape
        # Zero padding rather than reflection: works for clips shorter than n_fft / 2, and equals
        # noisymss.audio.spectral.stft, which the losses use for the reference magnitudes.
        spec = torch.stft(audio.reshape(-1, shape[-1]), self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        return spec.reshape(shape[:-1] + spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """(..., F, N) complex → (..., length) real."""
        shape = spec.shape
        audio = torch.istft(spec.reshape((-1,) + shape[-2:]), self.n_fft, self.hop, window=self.window,
                            center=True, length=length)
        return audio.reshape(shape[:-2] + (length,))

    def forward_spec(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source magnitude estimates, for a frequency-domain loss.

        Args:
            mixture: (B, C, T) waveform.

        Returns:
            (B, S, C, F, N) non-negative magnitudes, and the (B, C, F, N) complex mixture STFT.
        """
        if mixture.dim() != 3 or mixture.shape[1] != self.audio_channels:
            raise ValueError(f"mixture {tuple(mixture.shape)}: expected (batch, {self.audio_channels}, samples)")
        spec = self.stft(mixture)
        mag = spec.abs()
        frames_first = mag.permute(0, 3, 1, 2)  # (B, N, C, F): each frame is one row for the linear layers
        enc = [branch.encode(frames_first) for branch in self.branches]
        if self.bridge:
            # Bridge 1: every LSTM reads what all encoders saw, so a branch can use the others' cues.
            shared = torch.stack(enc).mean(0)
            feats = [torch.cat([e, branch.recur(shared)], -1) for e, branch in zip(enc, self.branches)]
            # Bridge 2: every decoder reads the average of all branches' skip-concatenated features.
            shared = torch.stack(feats).mean(0)
            feats = [shared] * len(self.branches)
        else:
            feats = [torch.cat([e, branch.recur(e)], -1) for e, branch in zip(enc, self.branches)]
        masks = torch.stack([branch.decode(f) for f, branch in zip(feats, self.branches)], 1)  # (B, S, N, C, F)
        # As UMX: the network output scales the mixture magnitude, so silence stays silent.
        return masks.permute(0, 1, 3, 4, 2) * mag[:, None], spec

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """Separate.

        Args:
            mixture: (B, C, T) waveform.

        Returns:
            (B, S, C, T) source waveforms, the same length as the input.
        """
        return self.forward_with_magnitudes(mixture)[0]

    def forward_with_magnitudes(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Separate, also returning the magnitudes the waveforms came from (for X-UMX's
        frequency-domain loss, which the paper computes before the inverse STFT).

        Args:
            mixture: (B, C, T) waveform.

        Returns:
            (B, S, C, T) source waveforms and their (B, S, C, F, N) magnitude estimates.
        """
        mag, spec = self.forward_spec(mixture)
        if self.wiener_iters > 0 and not self.training:
            est = wiener(mag, spec, iterations=self.wiener_iters)
        else:
            phase = torch.polar(torch.ones_like(spec.real), spec.angle())  # the mixture's phase, for every source
            est = mag * phase[:, None]
        return self.istft(est, mixture.shape[-1]), mag
