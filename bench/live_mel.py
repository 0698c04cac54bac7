"""Log-mel L1 distance between the streamed (live session) and the offline (`infer`) conversion of one file, per
block size and quality level; the do-nothing baseline is the input against the offline output.

    .venv/bin/python bench/live_mel.py WORKSPACE VOICE [--blocks 50,100,200]

Same settings both ways (pm pitch, blend 0.75, no transpose). The session runs at a 48 kHz device rate (the whole
chain: resampler in, blocks, resampler out), gate off, adaptation off. Its output[k] belongs to input[k] (the latency is
the start it drops), so the offline output is cut to the same length. Both are compared at 16 kHz, 80 mels, 10 ms
hop; "gain-matched" scales the streamed output to the offline one's RMS first (the offline path mixes in the
input's loudness envelope over half-second windows, which a block-wise stream cannot look ahead for).
Source: the first VCTK p227 file of ../shared/data.
"""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _logmel(audio):
    import librosa
    import numpy as np

    return np.log(librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=1024, hop_length=160, n_mels=80) + 1e-5)


def _distance(a, b) -> float:
    import numpy as np

    return float(np.abs(_logmel(a) - _logmel(b)).mean())


def main() -> int:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from voiceapp.audio import load_audio, resample
    from voiceapp.infer.models import load_voice
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.live.session import LiveSession, LiveSettings, build_levels
    from voiceapp.services import Services
    from voiceapp.voices.store import find_index
    from voiceapp.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("voice")
    parser.add_argument("--blocks", default="50,100,200")
    parser.add_argument("--lookahead-ms", type=int, default=20)
    args = parser.parse_args()
    services = Services(workspace=Workspace(args.workspace), device="cpu")
    path = sorted((ROOT.parent / "shared/data/speech/vctk/p227").glob("*.flac"))[0]
    x16, _ = load_audio(path, 16000, mono=True)
    x48 = resample(x16, 16000, 48000)
    voice = load_voice(args.voice, services)
    cfg = InferConfig(f0_method="pm", index_rate=0.75, neighbour_blend=0.75)
    index = find_index(Path(str(voice.path)), services.workspace) if getattr(voice, "engine", "rvc") == "rvc" else None
    offline = convert(x16, 16000, voice, cfg, index_path=index, services=services)
    off16 = resample(offline.audio, offline.sample_rate, 16000)
    print(f"# {path.name} ({len(x16) / 16000:.1f} s) into {args.voice} ({getattr(voice, 'engine', 'rvc')}, "
          f"{voice.sample_rate} Hz); offline: infer with the same settings", flush=True)
    other = convert(x16, 16000, voice, replace(cfg, segment_pad_s=0.3), index_path=index, services=services)
    other16 = resample(other.audio, other.sample_rate, 16000)
    n = min(len(other16), len(off16))
    print(f"reference: infer vs infer with 0.3 s instead of 0.5 s of context per piece: log-mel L1 "
          f"{_distance(other16[:n], off16[:n]):.3f} (how far a change of context alone moves this voice)", flush=True)
    for block_ms in (int(b) for b in args.blocks.split(",")):
        settings = LiveSettings(model=args.voice, f0_method="pm", blend=0.75, block_ms=block_ms, gate_db=None,
                                device_rate=48000, lookahead_ms=args.lookahead_ms)
        levels, _ = build_levels(settings, services)
        for i, level in enumerate(levels):
            if block_ms != 100 and i > 0:
                continue                       # the lighter levels at the middle block size only
            session = LiveSession(settings, levels, start_level=i, adaptive=False)
            step = int(round(session.block * 3))
            y48 = np.concatenate([session.push(x48[j:j + step]) for j in range(0, len(x48), step)])
            y = resample(y48, 48000, 16000)
            n = min(len(y), len(off16))
            ref, y, src = off16[:n], y[:n], x16[:n]
            gain = np.sqrt(np.mean(ref ** 2) / max(np.mean(y ** 2), 1e-12))
            print(f"block {block_ms:3d} ms + {args.lookahead_ms} ms look-ahead, {level.name:26s}: log-mel L1 live vs infer {_distance(y, ref):.3f} "
                  f"(gain-matched {_distance(y * gain, ref):.3f}); input vs infer (do-nothing) "
                  f"{_distance(src, ref):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
