"""JDC: joint melody pitch classification and voicing detection (Kum & Nam, Appl. Sci. 2019).

Layer by layer as the authors' released Keras model, in PyTorch layout
(batch, channels, time=31, freq=513). Pooling is along frequency only, so every one of the
31 input frames gets a pitch distribution.

Parameter count at full size: 4,179,860 = the Keras model's 4,177,556 trainable parameters
(summed from its weight shapes) + 2,304 for the second bias vector PyTorch's LSTM keeps per gate
(2 directions x 4 gates x (256 + 32) units).
"""
from __future__ import annotations

import torch
from torch import nn

N_PITCH_CLASSES = 722  # non-voice + 721 pitches: MIDI 38..83 in 1/16 semitone steps


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras defaults: momentum 0.99 (PyTorch 0.01), epsilon 1e-3.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)


class ResBlock(nn.Module):
    """BN → LReLU → MaxPool(1,4) → [Conv1×1 shortcut] + [Conv3×3 → BN → LReLU → Conv3×3].

    Shapes: (B, cin, T, F) → (B, cout, T, F // 4).
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pre = nn.Sequential(_bn(cin), nn.LeakyReLU(0.01), nn.MaxPool2d((1, 4)))
        self.shortcut = _conv(cin, cout, 1)
        self.residual = nn.Sequential(_conv(cin, cout, 3), _bn(cout), nn.LeakyReLU(0.01), _conv(cout, cout, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        return self.shortcut(x) + self.residual(x)


class BiLSTMHead(nn.Module):
    """Frame-wise BiLSTM then a linear layer, on features flattened in Keras order.

    Shapes: (B, C, T, F) → (B, T, out_features).
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, input_dropout: float = 0.3):
        super().__init__()
        # PyTorch has no recurrent dropout: the Keras model's 0.3 becomes dropout on the LSTM input.
        self.dropout = nn.Dropout(input_dropout)
        self.lstm = nn.LSTM(in_features, hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, t, f * c)  # feature index f * C + c, as Keras flattens
        x, _ = self.lstm(self.dropout(x))
        return self.linear(x)


class JDC(nn.Module):
    """The JDC CRNN.

    Args:
        channels: widths of the ConvBlock and the three ResBlocks (full size 64, 128, 192, 256).
        lstm_hidden: main BiLSTM units per direction (256).
        voice_channels, voice_hidden: auxiliary branch 1×1 conv width (256) and BiLSTM units (32).
        n_classes: pitch classes including non-voice at index 0 (722).
        n_bins: input frequency bins (513).
        dropout: after the PoolBlock and in the voice branch (0.5).
    """

    def __init__(
        self,
        channels: tuple[int, int, int, int] = (64, 128, 192, 256),
        lstm_hidden: int = 256,
        voice_channels: int = 256,
        voice_hidden: int = 32,
        n_classes: int = N_PITCH_CLASSES,
        n_bins: int = 513,
        dropout: float = 0.5,
    ):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.conv_block = nn.Sequential(_conv(1, c1, 3), _bn(c1), nn.LeakyReLU(0.01), _conv(c1, c1, 3))
        self.res1, self.res2, self.res3 = ResBlock(c1, c2), ResBlock(c2, c3), ResBlock(c3, c4)
        self.pool_block = nn.Sequential(_bn(c4), nn.LeakyReLU(0.01), nn.MaxPool2d((1, 4)), nn.Dropout(dropout))
        f4 = n_bins // 4 // 4 // 4 // 4  # 513 → 128 → 32 → 8 → 2
        self.pitch_head = BiLSTMHead(f4 * c4, lstm_hidden, n_classes)
        # Voicing branch: each level max-pooled over frequency down to f4 bins, concatenated.
        self.level_pools = nn.ModuleList(nn.MaxPool2d((1, n_bins // (4 ** k) // f4)) for k in range(3))
        self.voice_conv = nn.Sequential(
            _conv(c1 + c2 + c3 + c4, voice_channels, 1), _bn(voice_channels), nn.LeakyReLU(0.01), nn.Dropout(dropout)
        )
        self.voice_head = BiLSTMHead(f4 * voice_channels, voice_hidden, 2)
        self.n_bins = n_bins

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            spec: (B, 1, T, n_bins) normalised log-magnitude patches (T = 31 in the paper).

        Returns:
            pitch_logits: (B, T, n_classes); class 0 = non-voice.
            voice_logits: (B, T, 2) of the fused voicing output: log(softmax(o_v + [p0, 1 - p0])),
                so cross-entropy on them against voiced / unvoiced is the paper's L_voice.
        """
        f1 = self.conv_block(spec)
        f2 = self.res1(f1)
        f3 = self.res2(f2)
        f4 = self.pool_block(self.res3(f3))
        pitch_logits = self.pitch_head(f4)
        levels = [pool(f) for pool, f in zip(self.level_pools, (f1, f2, f3))] + [f4]
        o_v = self.voice_head(self.voice_conv(torch.cat(levels, dim=1))).softmax(dim=-1)
        p0 = pitch_logits.softmax(dim=-1)[..., :1]
        fused = o_v + torch.cat([p0, 1.0 - p0], dim=-1)
        return pitch_logits, fused.log_softmax(dim=-1)

    @classmethod
    def small(cls, width: float = 0.25, **kwargs) -> "JDC":
        """A width-scaled JDC for CPU runs (width 0.25: about 0.3 M parameters)."""
        chans = tuple(max(4, int(round(c * width))) for c in (64, 128, 192, 256))
        return cls(channels=chans, lstm_hidden=max(8, int(256 * width)), voice_channels=max(8, int(256 * width)),
                   voice_hidden=max(4, int(32 * width)), **kwargs)
