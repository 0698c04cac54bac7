"""The RVC synthesizer (VITS-style): content + pitch -> prior, posterior from spectrogram, flow, NSF-HiFiGAN.

Module tree and parameter names are RVC's (`SynthesizerTrnMs256NSFsid`, `...Ms768NSFsid` and the `_nono`
no-f0 variants), so community weights load with strict key matching:

    enc_p  TextEncoder   emb_phone (Linear content_dim -> hidden), emb_pitch (Embedding 256, f0 models),
                         encoder (6-layer relative-position transformer), proj (-> 2 x inter)
    enc_q  PosteriorEncoder  pre, enc (16-layer WaveNet), proj       (training only; not in voice files)
    flow   ResidualCouplingBlock  flows.{0,2,4,6} mean-only coupling layers, odd indices Flip
    dec    GeneratorNSF (f0) / Generator (no f0)
    emb_g  Embedding(spk_embed_dim, gin_channels)

Frames run at 100 per second; one frame is `hop_length` = prod(upsample_rates) output samples.

Checked against RVC's own classes (branch 20240604, weights copied across by name, noise set to zero): `infer`,
the training forward and both discriminators agree to ~2e-7 (float32) for v1/v2, 32k/40k/48k, with and without f0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
from torch import nn

from voiceapp.errors import ConfigError
from voiceapp.nets.attentions import Encoder
from voiceapp.nets.discriminator import DISCRIMINATOR_WIDTHS
from voiceapp.nets.commons import rand_slice_segments, randn, sequence_mask, slice_segments
from voiceapp.nets.modules import WN, Flip, ResidualCouplingLayer
from voiceapp.nets.nsf import Generator, GeneratorNSF
from voiceapp.nets.presets import CONTENT_DIMS, SIZES, VERSIONS

Size = Literal["full", "light", "tiny"]
F0_BINS = 256  # coarse pitch values 1..255 (0 unused)
NOISE_SCALE = 0.66666  # RVC's prior noise at inference

# Decoder shape per (version, sample rate): (upsample_rates, upsample_kernel_sizes, spec_channels).
# Sources: RVC configs/v{1,2}/{32k,40k,48k}.json (v2 40k trains with the v1 40k config).
_DECODERS: dict[tuple[str, int], tuple[list[int], list[int], int]] = {
    ("v1", 32000): ([10, 4, 2, 2, 2], [16, 16, 4, 4, 4], 513),
    ("v1", 40000): ([10, 10, 2, 2], [16, 16, 4, 4], 1025),
    ("v1", 48000): ([10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 1025),
    ("v2", 32000): ([10, 8, 2, 2], [20, 16, 4, 4], 513),
    ("v2", 40000): ([10, 10, 2, 2], [16, 16, 4, 4], 1025),
    ("v2", 48000): ([12, 10, 2, 2], [24, 20, 4, 4], 1025),
}
# Training segment in samples (RVC train.segment_size): 12800, except v1 48k 11520 and v2 48k 17280.
_SEGMENT_SAMPLES = {("v1", 48000): 11520, ("v2", 48000): 17280}

# `light`: RVC's architecture (same module types: relative-attention text encoder, WaveNet posterior, 4-step
# coupling flow, NSF-HiFiGAN with ResBlock1, same discriminators) made smaller for training on a CPU: decoder
# upsample_initial_channel 128 (RVC 512) with 2 resblocks per stage (kernels 3, 7; RVC 3, 7, 11), text encoder
# 4 layers (RVC 6) of width 128 with FFN 512 (RVC 192 / 768, also the flow width), posterior encoder 64 wide
# (training only), discriminators 1/8 as wide. bench/nets.py, v2 40k, batch 4 x 370 frames, 2 threads: the G+D
# training step costs ~8x less CPU time than `full` (20.2 s -> 2.5 s; FLOPs 23x fewer). Narrowing only the decoder and
# discriminators gave ~5x (the encoders run over whole clips and then dominate), and widths alone ~6.5x (small
# ops parallelise poorly), hence the fewer layers. Every size a voice file needs is in its 18-entry config
# list, so Voiceapp loads light files; but they are NOT community-standard models: no pretrained base exists for
# them and RVC WebUI / Applio do not support them (`SynthConfig.rvc_compatible` is False).
LIGHT_WIDTHS = {"upsample_initial_channel": 128, "hidden_channels": 128, "filter_channels": 512, "n_layers": 4,
                "resblock_kernel_sizes": (3, 7), "resblock_dilation_sizes": ((1, 3, 5), (1, 3, 5))}
LIGHT_POSTERIOR_CHANNELS = 64


@dataclass(frozen=True)
class SynthConfig:
    """The 18 RVC constructor arguments (the `config` list of a voice file) plus version, f0 use and input width."""

    spec_channels: int = 1025
    segment_size: int = 32  # as stored in files (RVC writes the literal 32); training uses `segment_frames`
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.0
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 10, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    spk_embed_dim: int = 109
    gin_channels: int = 256
    sample_rate: int = 40000
    content_dim: int = 768
    use_f0: bool = True
    version: str = "v2"
    size: str = "full"
    train_segment_frames: int | None = None  # None: RVC's value for version/rate (see `segment_frames`)
    discriminator_width: float = 1.0  # channel multiplier of the matching MultiPeriodDiscriminator
    posterior_channels: int | None = None  # enc_q width (training only, not in voice files); None: hidden_channels

    def __post_init__(self) -> None:
        for name in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "resblock_dilation_sizes",
                           tuple(tuple(int(d) for d in ds) for ds in self.resblock_dilation_sizes))
        object.__setattr__(self, "resblock", str(self.resblock))
        if self.version not in VERSIONS:
            raise ConfigError(f"SynthConfig.version must be one of {VERSIONS}, got {self.version!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ConfigError("SynthConfig: upsample_rates and upsample_kernel_sizes differ in length")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            raise ConfigError(f"SynthConfig.upsample_initial_channel {self.upsample_initial_channel} must be "
                              f"divisible by 2**{len(self.upsample_rates)}")
        if self.hidden_channels % self.n_heads or self.inter_channels % 2:
            raise ConfigError("SynthConfig: hidden_channels must divide by n_heads and inter_channels by 2")
        if any((k - r) % 2 for k, r in zip(self.upsample_kernel_sizes, self.upsample_rates)):
            raise ConfigError("SynthConfig: each upsample kernel minus its rate must be even")

    @property
    def hop_length(self) -> int:
        """Output samples per frame (100 frames per second at the RVC rates)."""
        return math.prod(self.upsample_rates)

    @property
    def segment_frames(self) -> int:
        """Frames of the random window decoded per training example (RVC: segment samples // hop)."""
        if self.train_segment_frames:
            return self.train_segment_frames
        samples = _SEGMENT_SAMPLES.get((self.version, self.sample_rate), 12800)
        return max(1, samples // self.hop_length)

    @property
    def segment_samples(self) -> int:
        return self.segment_frames * self.hop_length

    @property
    def rvc_compatible(self) -> bool:
        """True when RVC WebUI / Applio load a voice file of this config: RVC's widths for its version and rate
        (speaker count aside) and ContentVec's content width (256 v1, 768 v2)."""
        if self.content_dim != CONTENT_DIMS[self.version] or (self.version, self.sample_rate) not in _DECODERS:
            return False
        standard = SynthConfig.preset(self.version, self.sample_rate, self.use_f0).to_rvc_list()
        mine = self.to_rvc_list()
        return mine[:15] == standard[:15] and mine[16:] == standard[16:]

    @classmethod
    def preset(cls, version: str = "v2", sample_rate: int = 40000, use_f0: bool = True, size: Size = "full",
               content_dim: int | None = None) -> "SynthConfig":
        """RVC's config for version x rate (x f0), at `size` "full" (RVC's), "light" (CPU) or "tiny" (tests)."""
        sample_rate = parse_sample_rate(sample_rate)
        if version not in VERSIONS:
            raise ConfigError(f"Unknown model version {version!r}; choose one of {VERSIONS}.")
        if size not in SIZES:
            raise ConfigError(f"Unknown model size {size!r}; choose one of {SIZES}.")
        rates, kernels, spec = _DECODERS[(version, sample_rate)]
        cfg = cls(spec_channels=spec, upsample_rates=tuple(rates), upsample_kernel_sizes=tuple(kernels),
                  sample_rate=sample_rate, content_dim=content_dim or CONTENT_DIMS[version], use_f0=bool(use_f0),
                  version=version, size=size)
        if size == "light":
            return replace(cfg, **LIGHT_WIDTHS, posterior_channels=LIGHT_POSTERIOR_CHANNELS,
                           discriminator_width=DISCRIMINATOR_WIDTHS["light"])
        if size == "tiny":
            return replace(cfg, inter_channels=16, hidden_channels=16, filter_channels=32, n_layers=1,
                           resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),),
                           upsample_initial_channel=32 if len(rates) == 4 else 64, spk_embed_dim=4,
                           gin_channels=8, train_segment_frames=8, discriminator_width=DISCRIMINATOR_WIDTHS["tiny"])
        return cfg

    @classmethod
    def tiny(cls, version: str = "v2", sample_rate: int = 40000, use_f0: bool = True,
             content_dim: int | None = None) -> "SynthConfig":
        return cls.preset(version, sample_rate, use_f0, "tiny", content_dim)

    def to_rvc_list(self) -> list:
        """The 18-entry `config` list of a voice file (JSON-like: lists, ints, a str)."""
        return [self.spec_channels, self.segment_size, self.inter_channels, self.hidden_channels,
                self.filter_channels, self.n_heads, self.n_layers, self.kernel_size, _plain(self.p_dropout),
                self.resblock, list(self.resblock_kernel_sizes), [list(d) for d in self.resblock_dilation_sizes],
                list(self.upsample_rates), self.upsample_initial_channel, list(self.upsample_kernel_sizes),
                self.spk_embed_dim, self.gin_channels, self.sample_rate]

    @classmethod
    def from_rvc_list(cls, values: list, version: str = "v2", use_f0: bool = True, content_dim: int | None = None,
                      **extra) -> "SynthConfig":
        """Inverse of `to_rvc_list`; `extra` sets the fields that are not in the list (size, ...)."""
        if len(values) != 18:
            raise ConfigError(f"An RVC config list has 18 entries, this one has {len(values)}.")
        (spec, seg, inter, hidden, filt, heads, layers, kernel, dropout, resblock, rb_k, rb_d, up_r, up_init, up_k,
         spk, gin, sr) = values
        if extra.get("size") == "light":  # training-only widths that the list does not carry
            extra = {"posterior_channels": LIGHT_POSTERIOR_CHANNELS,
                     "discriminator_width": DISCRIMINATOR_WIDTHS["light"], **extra}
        return cls(spec_channels=int(spec), segment_size=int(seg), inter_channels=int(inter),
                   hidden_channels=int(hidden), filter_channels=int(filt), n_heads=int(heads), n_layers=int(layers),
                   kernel_size=int(kernel), p_dropout=float(dropout), resblock=str(resblock),
                   resblock_kernel_sizes=rb_k, resblock_dilation_sizes=rb_d, upsample_rates=up_r,
                   upsample_initial_channel=int(up_init), upsample_kernel_sizes=up_k, spk_embed_dim=int(spk),
                   gin_channels=int(gin), sample_rate=parse_sample_rate(sr),
                   content_dim=content_dim or CONTENT_DIMS.get(version, 768), use_f0=bool(use_f0),
                   version=version, **extra)

    def to_dict(self) -> dict:
        """JSON-friendly dict of every field (for sidecars and checkpoints); `SynthConfig(**d)` restores it."""
        return {k: _listify(v) for k, v in asdict(self).items()}


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _listify(value):
    return [_listify(v) for v in value] if isinstance(value, (tuple, list)) else value


def parse_sample_rate(value: int | str) -> int:
    """40000, "40000", "40k" or "40K" -> 40000."""
    text = str(value).strip().lower()
    try:
        rate = int(float(text[:-1]) * 1000) if text.endswith("k") else int(float(text))
    except ValueError as err:
        raise ConfigError(f"Unreadable sample rate {value!r}; expected e.g. 40000 or '40k'.") from err
    if rate <= 0:
        raise ConfigError(f"Sample rate must be positive, got {value!r}.")
    return rate


def rate_label(sample_rate: int) -> str:
    """40000 -> "40k" (the `sr` string RVC writes)."""
    return f"{sample_rate // 1000}k" if sample_rate % 1000 == 0 else str(sample_rate)


class TextEncoder(nn.Module):
    """Content features (+ coarse pitch) -> prior mean / log-std over `inter` channels."""

    def __init__(self, content_dim: int, out_channels: int, hidden_channels: int, filter_channels: int,
                 n_heads: int, n_layers: int, kernel_size: int, p_dropout: float, use_f0: bool = True) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(content_dim, hidden_channels)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        if use_f0:
            self.emb_pitch = nn.Embedding(F0_BINS, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor,
                skip_head: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """phone (batch, frames, content_dim), pitch (batch, frames) long -> m, logs (batch, inter, frames), mask."""
        x = self.emb_phone(phone)
        if pitch is not None and hasattr(self, "emb_pitch"):
            x = x + self.emb_pitch(pitch)
        x = self.lrelu(x * math.sqrt(self.hidden_channels)).transpose(1, -1)  # (batch, hidden, frames)
        x_mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        if skip_head:
            x, x_mask = x[:, :, skip_head:], x_mask[:, :, skip_head:]
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> sampled latent z (training only)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int = 5,
                 dilation_rate: int = 1, n_layers: int = 16, gin_channels: int = 0) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None):
        """spec (batch, spec_channels, frames) -> z, m, logs (batch, inter, frames), mask (batch, 1, frames)."""
        x_mask = sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)
        x = self.enc(self.pre(spec) * x_mask, x_mask, g=g)
        m, logs = torch.split(self.proj(x) * x_mask, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * x_mask
        return z, m, logs, x_mask


class ResidualCouplingBlock(nn.Module):
    """Normalizing flow: 4 x (mean-only coupling layer, Flip) -> `flows.{0..7}`."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 5, dilation_rate: int = 1,
                 n_layers: int = 3, n_flows: int = 4, gin_channels: int = 0) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                                    gin_channels=gin_channels))
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        for flow in (reversed(self.flows) if reverse else self.flows):
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x


class Synthesizer(nn.Module):
    """RVC's SynthesizerTrnMs{256,768}NSFsid(_nono), built from a `SynthConfig`."""

    def __init__(self, cfg: SynthConfig, with_posterior: bool = True) -> None:
        """`with_posterior=False` builds without `enc_q` (inference: faster to build, as in voice files)."""
        super().__init__()
        self.cfg = cfg
        self.use_f0 = cfg.use_f0
        self.segment_frames = cfg.segment_frames
        self.enc_p = TextEncoder(cfg.content_dim, cfg.inter_channels, cfg.hidden_channels, cfg.filter_channels,
                                 cfg.n_heads, cfg.n_layers, cfg.kernel_size, float(cfg.p_dropout), cfg.use_f0)
        decoder_args = (cfg.inter_channels, cfg.resblock, list(cfg.resblock_kernel_sizes),
                        [list(d) for d in cfg.resblock_dilation_sizes], list(cfg.upsample_rates),
                        cfg.upsample_initial_channel, list(cfg.upsample_kernel_sizes), cfg.gin_channels)
        self.dec = GeneratorNSF(*decoder_args, sample_rate=cfg.sample_rate) if cfg.use_f0 else Generator(*decoder_args)
        self.enc_q = PosteriorEncoder(cfg.spec_channels, cfg.inter_channels,
                                      cfg.posterior_channels or cfg.hidden_channels, 5, 1, 16,
                                      gin_channels=cfg.gin_channels) if with_posterior else None
        self.flow = ResidualCouplingBlock(cfg.inter_channels, cfg.hidden_channels, 5, 1, 3,
                                          gin_channels=cfg.gin_channels)
        self.emb_g = nn.Embedding(cfg.spk_embed_dim, cfg.gin_channels)

    def remove_posterior(self) -> "Synthesizer":
        """Drop `enc_q` (not needed for inference; voice files do not carry it)."""
        self.enc_q = None
        return self

    def _decode(self, z: torch.Tensor, pitchf: torch.Tensor | None, g: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if self.use_f0:
            if pitchf is None:
                raise ValueError("this model uses f0: pass pitchf (Hz per frame)")
            return self.dec(z, pitchf, g=g, generator=generator)
        return self.dec(z, g=g)

    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
                pitchf: torch.Tensor | None, y: torch.Tensor, y_lengths: torch.Tensor, sid: torch.Tensor):
        """Training pass.

        phone (batch, frames, content_dim) at 100 Hz; pitch (batch, frames) long 1..255 and pitchf (batch, frames)
        Hz, both None for no-f0 models; y (batch, spec_channels, frames) linear spectrogram; sid (batch,) long.
        Returns (o (batch, 1, segment_frames*hop), ids_slice (batch,) start frames, x_mask, y_mask,
        (z, z_p, m_p, logs_p, m_q, logs_q)).
        """
        if self.enc_q is None:
            raise RuntimeError("this synthesizer was loaded for inference (no posterior encoder)")
        g = self.emb_g(sid).unsqueeze(-1)  # (batch, gin, 1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.use_f0 else None, phone_lengths)
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=g)
        z_p = self.flow(z, y_mask, g=g)
        z_slice, ids_slice = rand_slice_segments(z, y_lengths, self.segment_frames)
        pitchf_slice = slice_segments(pitchf, ids_slice, self.segment_frames) if self.use_f0 else None
        o = self._decode(z_slice, pitchf_slice, g)
        return o, ids_slice, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q)

    @torch.no_grad()
    def infer(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
              pitchf: torch.Tensor | None, sid: torch.Tensor, noise_scale: float = NOISE_SCALE,
              generator: torch.Generator | None = None, skip_head: int | None = None,
              return_length: int | None = None) -> torch.Tensor:
        """Synthesize audio (batch, 1, frames*hop) in [-1, 1] at `cfg.sample_rate`.

        `generator` makes the prior noise and the NSF noise reproducible. `skip_head`/`return_length` (frames)
        decode only frames [skip_head, skip_head+return_length) (streaming use, as RVC's realtime path).
        """
        g = self.emb_g(sid).unsqueeze(-1)
        pitch = pitch if self.use_f0 else None
        if skip_head is not None and return_length is not None:
            flow_head = max(int(skip_head) - 24, 0)
            dec_head = int(skip_head) - flow_head
            m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths, flow_head)
        else:
            m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
        noise = randn(m_p.shape, m_p, generator)
        z_p = (m_p + torch.exp(logs_p) * noise * noise_scale) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        if skip_head is not None and return_length is not None:
            z = z[:, :, dec_head:dec_head + return_length]
            x_mask = x_mask[:, :, dec_head:dec_head + return_length]
            if pitchf is not None:
                pitchf = pitchf[:, skip_head:skip_head + return_length]
        return self._decode(z * x_mask, pitchf, g, generator)
