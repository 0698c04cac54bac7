"""Log-mel L1 distance between streamed (`live`) and offline (`infer`) conversion of one file, per block size; the
do-nothing baseline is the input against the offline output. Usage: bench/live_mel.py WORKSPACE VOICE_NAME."""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch; torch.set_num_threads(1)
import numpy as np, librosa
from pathlib import Path
from voiceapp.workspace import Workspace
from voiceapp.services import Services
from voiceapp.audio import load_audio, resample
from voiceapp.infer.models import load_voice
from voiceapp.infer.pipeline import InferConfig, convert
from voiceapp.live.engines import window_engine
from voiceapp.live.stream import LiveConfig, StreamConverter
ws = Workspace(Path(sys.argv[1])); s = Services(workspace=ws, device="cpu")
x, _ = load_audio(sorted((Path(__file__).resolve().parents[2] / "shared/data/speech/vctk/p227").glob("*.flac"))[0], 16000, mono=True)
v = load_voice(sys.argv[2], s); cfg = InferConfig(f0_method="pm")
off = resample(convert(x, 16000, v, cfg, services=s).audio, v.sample_rate, 16000)
def lm(a): return np.log(librosa.feature.melspectrogram(y=a, sr=16000, n_fft=1024, hop_length=160, n_mels=80) + 1e-5)
for block in (50, 100, 200):
    conv = StreamConverter(window_engine(v, cfg, services=s), LiveConfig(block_ms=block)); b = block*16
    y = resample(np.concatenate([conv.push(x[i:i+b]) for i in range(0, len(x)-b+1, b)]), v.sample_rate, 16000)
    n = len(y); d = np.abs(lm(y) - lm(off[:n])).mean(); base = np.abs(lm(x[:n]) - lm(off[:n])).mean()
    print(f"block {block}: log-mel L1 live vs infer {d:.3f}; input vs infer (do-nothing) {base:.3f}", flush=True)
