"""UVR's VR-arch models (`*.pth`: 1_HP-UVR, 5_HP-Karaoke-UVR, UVR-DeEcho-DeReverb, UVR-DeNoise, ...) as a
separator network: (2, n) at 44.1 kHz -> {primary stem: (2, n), secondary stem: (2, n)}.

The networks are audio-separator's (`uvr_lib_v5/vr_network`: `nets.CascadedASPPNet` for VR 5.0 files, sized by
UVR's "nn arch size", and `nets_new.CascadedNet` for VR 5.1 files, sized by nout / nout_lstm); the band-split
spectrogram around them is ours. Facts used (UVR / audio-separator): a parameter set (`vr_network/modelparams/
<name>.json`) splits the signal into bands, each resampled to its own rate and STFT'd with its own n_fft / hop
(librosa's centred Hann STFT); the bins crop_start:crop_stop of each band, stacked low to high, form one
(2, bins + 1, frames) spectrogram (low-passed from pre_filter_start). VR 5.0 files apply the set's channel
transform (mid/side, reversed, ...) to the waveform, VR 5.1 files a per-band `convert_channels` to the spectrum.
The network sees the magnitude, normalised to a peak of 1 (per chunk of the file stage here; UVR normalises the
whole song), in windows of `window_size` frames that overlap by
2 * net.offset, and returns a mask; primary = mask * mix, secondary = (1 - mask) * mix, with UVR's "aggression"
exponent applied to the mask first (split at band 1's crop_stop). Bands go back to waveforms low to high: each is
band-pass filtered, inverted, added to the lower bands and resampled up to the next band's rate.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.assets.uvr import UvrModel, VrParams
from voiceapp.errors import InputError
from voiceapp.progress import NEVER, CancelToken

log = logging.getLogger(__name__)

# UVR's VR 5.0 capacity classes, named by their files' size in KiB (audio-separator picks the nearest one).
VR5_ARCH_SIZES = (31191, 33966, 56817, 123821, 123812, 129605, 218409, 537238, 537227)
# Stems for which UVR inverts the aggression setting (they are "not the accompaniment").
_NON_ACCOMPANIMENT = {"vocals", "other", "bass", "drums", "guitar", "piano", "synthesizer", "strings", "woodwinds",
                      "brass", "wind inst"}


def band_params_path(name: str) -> Path:
    """audio-separator's copy of UVR's band-split parameter set `name` (e.g. "4band_v3")."""
    try:
        import audio_separator
    except ImportError as err:
        raise InputError(f"VR-arch models need the `audio-separator` package ({err}). Install it with "
                         f"`pip install --no-deps -r requirements-nodeps.txt`.") from err
    return Path(audio_separator.__file__).parent / "separator" / "uvr_lib_v5" / "vr_network" / "modelparams" / \
        f"{name}.json"


def load_band_params(name: str) -> dict:
    """The parameter set as a dict with integer band keys and the channel flags defaulted to False."""
    path = band_params_path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"VR parameter set {name!r} is not readable at {path} ({err}); reinstall audio-separator "
                         f"(`pip install --no-deps -r requirements-nodeps.txt`).") from err
    data["band"] = {int(k): v for k, v in data["band"].items()}
    if "n_bins" in data:
        data["bins"] = data["n_bins"]
    for key in ("mid_side", "mid_side_b", "mid_side_b2", "stereo_w", "stereo_n", "reverse"):
        data.setdefault(key, False)
    return data


def _lp_mask(n_bins: int, start: int, stop: int) -> np.ndarray:
    return np.concatenate([np.ones(start - 1), np.linspace(1, 0, stop - start + 1), np.zeros(n_bins - stop)])[:, None]


def _hp_mask(n_bins: int, start: int, stop: int) -> np.ndarray:
    ramp = np.linspace(0, 1, 1 + start - stop)
    return np.concatenate([np.zeros(stop + 1), ramp, np.ones(n_bins - start - 2)])[:, None]


def _lp_filter(spec: np.ndarray, start: int, stop: int, v51: bool) -> np.ndarray:
    if v51:
        return spec * _lp_mask(spec.shape[1], start, stop)
    gains = np.ones(spec.shape[1], dtype=np.float32)
    gains[start:stop] = 1.0 - np.arange(1, stop - start + 1) / (stop - start)
    gains[stop:] = 0.0
    return spec * gains[:, None]


def _hp_filter(spec: np.ndarray, start: int, stop: int, v51: bool) -> np.ndarray:
    if v51:
        return spec * _hp_mask(spec.shape[1], start, stop)
    gains = np.ones(spec.shape[1], dtype=np.float32)
    if start > stop:   # bins start, start-1, ..., stop+1 fade out towards stop
        gains[stop + 1:start + 1] = (1.0 - np.arange(1, start - stop + 1) / (start - stop))[::-1]
    gains[:stop + 1] = 0.0
    return spec * gains[:, None]


class BandSplit:
    """UVR's band-split spectrogram for one parameter set (see module docstring)."""

    def __init__(self, params: dict, v51: bool) -> None:
        self.p, self.v51 = params, v51
        self.bands = params["band"]
        self.rate = int(params["sr"])

    def _to_channels(self, wave: np.ndarray) -> np.ndarray:
        """VR 5.0 files: the parameter set's waveform channel transform."""
        p, left, right = self.p, wave[0], wave[1]
        if self.v51:
            return wave
        if p["reverse"]:
            return np.stack([left[::-1], right[::-1]])
        if p["mid_side"]:
            return np.stack([(left + right) / 2, left - right])
        if p["mid_side_b2"]:
            return np.stack([right + left * 0.5, left - right * 0.5])
        return wave

    def _from_channels(self, wave: np.ndarray, band: int) -> np.ndarray:
        p, a, b = self.p, wave[0], wave[1]
        if self.v51:
            cc = self.bands[band].get("convert_channels")
            if cc == "mid_side_c":
                return np.stack([a / 1.0625 - b / 4.25, b / 1.0625 + a / 4.25])
            if cc == "mid_side":
                return np.stack([a + b / 2, a - b / 2])
            if cc == "stereo_n":
                return np.stack([a - b * 0.25, b - a * 0.25])
            return wave
        if p["reverse"]:
            return np.stack([a[::-1], b[::-1]])
        if p["mid_side"]:
            return np.stack([a + b / 2, a - b / 2])
        if p["mid_side_b2"]:
            return np.stack([b / 1.25 + 0.4 * a, a / 1.25 - 0.4 * b])
        return wave

    def _convert_spec(self, spec: np.ndarray, band: int) -> np.ndarray:
        """VR 5.1 files: the band's spectrum channel transform."""
        cc = self.bands[band].get("convert_channels") if self.v51 else None
        a, b = spec[0], spec[1]
        if cc == "mid_side_c":
            return np.stack([a + b * 0.25, b - a * 0.25])
        if cc == "mid_side":
            return np.stack([(a + b) / 2, a - b])
        if cc == "stereo_n":
            return np.stack([(a + b * 0.25) / 0.9375, (b + a * 0.25) / 0.9375])
        return spec

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """(2, n) at the set's rate -> (2, bins + 1, frames) complex64."""
        import librosa

        from voiceapp.audio.dsp import resample

        n_bands = len(self.bands)
        waves, specs = {}, {}
        for d in range(n_bands, 0, -1):
            bp = self.bands[d]
            src, src_rate = (wave, self.rate) if d == n_bands else (waves[d + 1], self.bands[d + 1]["sr"])
            waves[d] = resample(src, src_rate, bp["sr"]) if src_rate != bp["sr"] else src
            x = self._to_channels(waves[d])
            spec = np.stack([librosa.stft(np.ascontiguousarray(c), n_fft=bp["n_fft"], hop_length=bp["hl"])
                             for c in x])                        # (2, n_fft // 2 + 1, frames)
            specs[d] = self._convert_spec(spec, d)
        frames = min(s.shape[2] for s in specs.values())
        out = np.zeros((2, self.p["bins"] + 1, frames), dtype=np.complex64)
        offset = 0
        for d in range(1, n_bands + 1):
            bp = self.bands[d]
            h = bp["crop_stop"] - bp["crop_start"]
            out[:, offset:offset + h] = specs[d][:, bp["crop_start"]:bp["crop_stop"], :frames]
            offset += h
        if offset > self.p["bins"]:
            raise InputError(f"VR parameter set: its bands give {offset} bins, more than its {self.p['bins']}")
        start, stop = self.p["pre_filter_start"], self.p["pre_filter_stop"]
        if start > 0:
            if self.v51:
                out *= _lp_mask(out.shape[1], start, stop)
            elif n_bands == 1:
                out = _lp_filter(out, start, stop, False)
            else:   # UVR's gentle roll-off above pre_filter_start for multi-band VR 5.0 sets
                gain_prev = 1.0
                for b in range(start + 1, stop):
                    g = math.pow(10, -(b - start) * (3.5 - gain_prev) / 20.0)
                    gain_prev = g
                    out[:, b, :] *= g
        return out

    def waveform(self, spec: np.ndarray) -> np.ndarray:
        """Inverse of `spectrogram`: (2, bins + 1, frames) -> (2, samples) at the set's rate."""
        import librosa

        from voiceapp.audio.dsp import resample

        n_bands, offset, wave = len(self.bands), 0, None
        for d in range(1, n_bands + 1):
            bp = self.bands[d]
            s = np.zeros((2, bp["n_fft"] // 2 + 1, spec.shape[2]), dtype=np.complex64)
            h = bp["crop_stop"] - bp["crop_start"]
            s[:, bp["crop_start"]:bp["crop_stop"]] = spec[:, offset:offset + h]
            offset += h
            if d == n_bands and bp.get("hpf_start", -1) > 0:
                s = _hp_filter(s, bp["hpf_start"], bp["hpf_stop"] - 1, self.v51)
            elif d < n_bands:
                if d > 1:
                    s = _hp_filter(s, bp["hpf_start"], bp["hpf_stop"] - 1, self.v51)
                s = _lp_filter(s, bp["lpf_start"], bp["lpf_stop"], self.v51)
            band_wave = np.stack([librosa.istft(np.ascontiguousarray(c), hop_length=bp["hl"]) for c in s])
            band_wave = self._from_channels(band_wave, d)
            if wave is not None:
                band_wave = band_wave + _fit(wave, band_wave.shape[1])
            wave = band_wave if d == n_bands else resample(band_wave, bp["sr"], self.bands[d + 1]["sr"])
        return np.asarray(wave, dtype=np.float32)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:, :n] if x.shape[1] >= n else np.pad(x, ((0, 0), (0, n - x.shape[1])))


def arch_size_for(path: Path) -> int:
    """UVR's VR 5.0 capacity class of a file: the nearest of VR5_ARCH_SIZES to its size in KiB."""
    size_kib = math.ceil(path.stat().st_size / 1024)
    return min(VR5_ARCH_SIZES, key=lambda a: abs(a - size_kib))


def build_vr_network(params: VrParams, bins: int, arch_size: int) -> Any:
    """The network for `params` (random weights): VR 5.1 CascadedNet when nout is set, else VR 5.0."""
    try:
        if params.nout is not None:
            from audio_separator.separator.uvr_lib_v5.vr_network.nets_new import CascadedNet

            return CascadedNet(bins * 2, 0, nout=params.nout, nout_lstm=params.nout_lstm)
        from audio_separator.separator.uvr_lib_v5.vr_network.nets import determine_model_capacity

        return determine_model_capacity(bins * 2, arch_size)
    except ImportError as err:
        raise InputError(f"VR-arch models need the `audio-separator` package ({err}). Install it with "
                         f"`pip install --no-deps -r requirements-nodeps.txt`.") from err


class VrNet:
    """A UVR VR-arch `.pth` (a plain state dict): (2, n) at 44.1 kHz -> {primary: (2, n), secondary: (2, n)}."""

    def __init__(self, path: Path, model: UvrModel, params: VrParams, device: str = "cpu",
                 window_size: int = 512, aggression: int = 5, batch_windows: int = 4) -> None:
        import torch

        from voiceapp.devices import torch_device

        self.params = params
        self.split = BandSplit(load_band_params(params.band_params), v51=params.nout is not None)
        self.window_size, self.batch_windows = window_size, max(1, batch_windows)
        self.device = torch_device(device)
        arch = params.arch_size or arch_size_for(path)
        self.net = build_vr_network(params, self.split.p["bins"], arch)
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated file, a pickle that needs code, ...
            raise InputError(f"{path}: the VR model does not load ({type(err).__name__}: {str(err)[:200]}). Delete "
                             f"it and download {model.title} again (Separate > UVR models), or import a good copy.") \
                from err
        try:
            self.net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            kind = f"VR 5.1 (nout {params.nout})" if params.nout else f"VR 5.0 (arch size {arch})"
            raise InputError(f"{path}: the weights do not fit a {kind} network on {params.band_params} "
                             f"({str(err)[:200]}); the file is not {model.title}, or its model data is wrong. "
                             f"Download {model.title} again.") from err
        self.net.eval().to(self.device)
        bp1 = self.split.bands[1]
        primary = params.primary_stem.strip().lower()
        aggr = aggression / 100 * 2
        self.aggr = (1 - aggr if primary in _NON_ACCOMPANIMENT else aggr) if aggr else 0.0
        self.aggr_split_bin = bp1["crop_stop"]
        self.aggr_correction = self.split.p.get("aggr_correction")

    def _mask(self, mag: np.ndarray, cancel: CancelToken) -> np.ndarray:
        """(2, bins + 1, frames) magnitude -> mask of the same shape (UVR's windowing)."""
        import torch

        frames, offset = mag.shape[2], self.net.offset
        roi = self.window_size - 2 * offset or self.window_size
        pad_r = roi - frames % roi + offset
        padded = np.pad(mag, ((0, 0), (0, 0), (offset, pad_r)))
        padded /= max(float(padded.max()), 1e-8)
        count = (padded.shape[2] - 2 * offset) // roi
        masks = []
        with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
            for first in range(0, count, self.batch_windows):
                cancel.raise_if_set()
                ks = range(first, min(first + self.batch_windows, count))
                x = np.stack([padded[:, :, k * roi:k * roi + self.window_size] for k in ks]).astype(np.float32)
                pred = self.net.predict_mask(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
                masks.extend(pred)                               # each (2, bins + 1, roi)
        return np.concatenate(masks, axis=2)[:, :, :frames]

    def _aggressive(self, mask: np.ndarray) -> np.ndarray:
        if not self.aggr:
            return mask
        corr = self.aggr_correction or {}
        for ch, a in enumerate((self.aggr + corr.get("left", 0.0), self.aggr + corr.get("right", 0.0))):
            split = self.aggr_split_bin
            mask[ch, :split] = np.power(mask[ch, :split], 1 + a / 3)
            mask[ch, split:] = np.power(mask[ch, split:], 1 + a)
        return mask

    def __call__(self, mix: np.ndarray, cancel: CancelToken = NEVER) -> dict[str, np.ndarray]:
        from voiceapp.audio.dsp import resample

        n = mix.shape[1]
        rate = self.split.rate
        x = resample(mix, 44100, rate) if rate != 44100 else mix
        spec = self.split.spectrogram(x)
        mag, phase = np.abs(spec), np.exp(1j * np.angle(spec))
        mask = self._aggressive(self._mask(mag, cancel))
        out = {}
        for name, m in ((self.params.primary_stem, mask), (self.params.secondary_stem, 1.0 - mask)):
            wave = self.split.waveform((m * mag * phase).astype(np.complex64))
            wave = resample(wave, rate, 44100) if rate != 44100 else wave
            out[name] = np.nan_to_num(_fit(wave, n)).astype(np.float32)
        return out
