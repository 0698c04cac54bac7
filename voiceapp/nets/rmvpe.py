"""RMVPE pitch network (Wei et al. 2023), written from its published description and parameter names.

The module tree and parameter names match the state dict of the published `rmvpe.pt`
(`E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))`, 741 entries), so that file loads with strict key matching:

    log-mel (batch, 128, frames) -> DeepUnet (5 down / 4 middle / 5 up levels, 16 base channels)
      -> Conv2d(16 -> 3) -> BiGRU(3*128 -> 2x256) -> Linear(512 -> 360) -> sigmoid salience (batch, frames, 360)

The 360 bins are 20 cents apart starting at 1997.38 cents (relative to 10 Hz); `salience_to_f0` decodes them
with a weighted average over 9 bins around the peak, as RVC does.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

N_MELS = 128
N_BINS = 360
SAMPLE_RATE = 16000
HOP_LENGTH = 160
N_FFT = 1024
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0
CENTS_PER_BIN = 20.0
FRAME_MULTIPLE = 32                # the U-Net halves the time axis 5 times


@contextlib.contextmanager
def onednn_disabled() -> Iterator[None]:
    """oneDNN makes recurrent layers 15-60x slower on CPU here (DESIGN.md §6); convolutions keep it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


class ConvBlockRes(nn.Module):
    """Two 3x3 conv + BN + ReLU with a residual (1x1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + skip


class ResEncoderBlock(nn.Module):
    """`n_blocks` residual conv blocks, then (when `kernel_size` is set) an average pool."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int] | None,
                 n_blocks: int = 1) -> None:
        super().__init__()
        self.conv = nn.ModuleList([ConvBlockRes(in_channels, out_channels)]
                                  + [ConvBlockRes(out_channels, out_channels) for _ in range(n_blocks - 1)])
        self.pool = nn.AvgPool2d(kernel_size) if kernel_size is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.conv:
            x = block(x)
        return x, (self.pool(x) if self.pool is not None else x)


class Encoder(nn.Module):
    def __init__(self, in_channels: int, n_encoders: int, kernel_size: tuple[int, int], n_blocks: int,
                 out_channels: int = 16) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=0.01)
        self.layers = nn.ModuleList()
        for _ in range(n_encoders):
            self.layers.append(ResEncoderBlock(in_channels, out_channels, kernel_size, n_blocks))
            in_channels, out_channels = out_channels, out_channels * 2
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.bn(x)
        skips = []
        for layer in self.layers:
            skip, x = layer(x)  # x: (batch, channels, frames / 2^k, mels / 2^k)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_inters: int, n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ResEncoderBlock(in_channels, out_channels, None, n_blocks)]
                                    + [ResEncoderBlock(out_channels, out_channels, None, n_blocks)
                                       for _ in range(n_inters - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    """Transposed-conv upsampling x2, concatenation with the encoder skip, `n_blocks` residual blocks."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], n_blocks: int = 1) -> None:
        super().__init__()
        out_padding = (0, 1) if stride == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               output_padding=out_padding, bias=False),
            nn.BatchNorm2d(out_channels, momentum=0.01),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList([ConvBlockRes(out_channels * 2, out_channels)]
                                   + [ConvBlockRes(out_channels, out_channels) for _ in range(n_blocks - 1)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels: int, n_decoders: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_decoders):
            out_channels = in_channels // 2
            self.layers.append(ResDecoderBlock(in_channels, out_channels, stride, n_blocks))
            in_channels = out_channels

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips)):
            x = layer(x, skip)
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size: tuple[int, int], n_blocks: int, en_de_layers: int = 5, inter_layers: int = 4,
                 in_channels: int = 1, en_out_channels: int = 16) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, en_de_layers, kernel_size, n_blocks, en_out_channels)
        bottom = self.encoder.out_channels
        self.intermediate = Intermediate(bottom, bottom * 2, inter_layers, n_blocks)
        self.decoder = Decoder(bottom * 2, en_de_layers, kernel_size, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, input_features: int, hidden_features: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_features, hidden_features, num_layers=num_layers, batch_first=True,
                          bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with onednn_disabled():
            return self.gru(x)[0]


class E2E(nn.Module):
    """The published RMVPE network. Input log-mel (batch, 128, frames) -> salience (batch, frames, 360)."""

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel_size: tuple[int, int] = (2, 2),
                 en_de_layers: int = 5, inter_layers: int = 4, in_channels: int = 1,
                 en_out_channels: int = 16) -> None:
        super().__init__()
        self.unet = DeepUnet(kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, 3, padding=1)
        self.fc = nn.Sequential(BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_BINS), nn.Dropout(0.25),
                                nn.Sigmoid())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(-1, -2).unsqueeze(1)           # (batch, 1, frames, mels)
        x = self.cnn(self.unet(x))                       # (batch, 3, frames, mels)
        x = x.transpose(1, 2).flatten(-2)                # (batch, frames, 3 * mels)
        return self.fc(x)                                # (batch, frames, 360)


class MelFrontEnd(nn.Module):
    """RMVPE's log-mel: 1024-point STFT (hann, centre padded), hop 160, 128 HTK mels 30-8000 Hz, log(max(., 1e-5))."""

    def __init__(self) -> None:
        super().__init__()
        import librosa

        basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX,
                                    htk=True)
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) at 16 kHz -> (batch, 128, samples // 160 + 1)."""
        spec = torch.stft(audio, N_FFT, hop_length=HOP_LENGTH, win_length=N_FFT, window=self.window,
                          center=True, return_complex=True)
        magnitude = spec.abs()                           # (batch, 513, frames)
        mel = torch.matmul(self.mel_basis, magnitude)    # (batch, 128, frames)
        return torch.log(torch.clamp(mel, min=1e-5))


def salience_to_cents(salience: np.ndarray, threshold: float = 0.03) -> np.ndarray:
    """(frames, 360) salience -> cents re 10 Hz per frame; 0 where the peak salience is <= `threshold`."""
    center = np.argmax(salience, axis=1)
    padded = np.pad(salience, ((0, 0), (4, 4)))
    index = center[:, None] + np.arange(9)[None, :]      # the 9 bins around the peak (padded coordinates)
    window = np.take_along_axis(padded, index, axis=1)
    cents_map = np.pad(CENTS_OFFSET + CENTS_PER_BIN * np.arange(N_BINS), (4, 4))
    cents = (window * cents_map[index]).sum(axis=1) / np.maximum(window.sum(axis=1), 1e-12)
    cents[salience.max(axis=1) <= threshold] = 0.0
    return cents


def salience_to_f0(salience: np.ndarray, threshold: float = 0.03) -> np.ndarray:
    """(frames, 360) salience -> f0 in Hz (0 = unvoiced)."""
    cents = salience_to_cents(salience, threshold)
    f0 = 10.0 * 2.0 ** (cents / 1200.0)
    f0[cents == 0] = 0.0
    return f0.astype(np.float32)


class Rmvpe(nn.Module):
    """Audio (16 kHz) -> f0 Hz at 100 frames/s with the E2E network; long audio in overlapping chunks."""

    def __init__(self, net: E2E | None = None) -> None:
        super().__init__()
        self.mel = MelFrontEnd()
        self.net = net if net is not None else E2E()

    @classmethod
    def from_state_dict(cls, state_dict: dict) -> "Rmvpe":
        with torch.device("meta"):  # no random initialisation: every parameter comes from the file
            net = E2E()
        net.load_state_dict(state_dict, strict=True, assign=True)
        return cls(net).eval()

    def salience(self, mel: torch.Tensor, chunk_frames: int = 3200, context_frames: int = 128) -> torch.Tensor:
        """(1, 128, frames) -> (frames, 360); chunks of `chunk_frames` with `context_frames` each side."""
        n_frames = mel.shape[-1]
        outputs = []
        for start in range(0, n_frames, chunk_frames):
            lo, hi = max(0, start - context_frames), min(n_frames, start + chunk_frames + context_frames)
            piece = mel[..., lo:hi]
            length = piece.shape[-1]
            n_pad = -length % FRAME_MULTIPLE
            if n_pad:
                piece = F.pad(piece, (0, n_pad), mode="constant")  # as RVC does; the padded frames are dropped
            out = self.net(piece)[0, :length]            # (length, 360)
            outputs.append(out[start - lo: start - lo + min(chunk_frames, n_frames - start)])
        return torch.cat(outputs, dim=0)

    @torch.inference_mode()
    def forward(self, audio: torch.Tensor, threshold: float = 0.03) -> np.ndarray:
        """(samples,) float at 16 kHz -> f0 Hz (samples // 160 + 1,) float32."""
        mel = self.mel(audio.reshape(1, -1).float())
        salience = self.salience(mel).float().cpu().numpy()
        return salience_to_f0(salience, threshold)
