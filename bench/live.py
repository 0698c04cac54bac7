"""End-to-end latency of the Live tab, measured in the real page: headless Chromium, a fake microphone, and
cross-correlation.

    .venv/bin/python bench/live.py WORKSPACE --models passthrough NAME... --blocks 40 60 100 200 --seconds 8
    .venv/bin/python bench/live.py WORKSPACE --prepare      # adds `rvc_full`: RVC's full v2 40k net, random weights

Starts the app (app.py) on a free 127.0.0.1 port with WORKSPACE, and Chromium with a fake microphone fed from a
generated file of noise bursts and short voiced syllables at irregular intervals. For each model and block size it
starts the Live session through the page's own script (`window.voiceappLive`, what the Start button calls), lets it
settle, then records at the AudioWorklet what the microphone gave and what the page played, on the same AudioContext
frame clock. The delay is the lag of the peak of the cross-correlation of the two energy envelopes (1 ms frames;
refined on the waveforms when they correlate), reported with the peak's correlation (Pearson r of the envelopes).

End to end = that in-page delay + what the browser reports for its audio path (AudioContext.baseLatency +
outputLatency + the input track's latency). Algorithmic = the session's block + look-ahead + resampler delay; load =
compute per block / block length from the session's stats (mean and p95 over the recording); level = the quality
level(s) in use; degraded = share of stats messages at a lower level, dropped = blocks passed through unconverted.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("VOICEAPP_CHROMIUM", "/usr/bin/chromium")
FILE_RATE = 48000
MAX_LAG_S = 1.5


# ----------------------------------------------------------------------------------------------- the fake microphone

def burst_signal(seconds: float = 12.0, rate: int = FILE_RATE, seed: int = 0) -> np.ndarray:
    """Silence with, at irregular 0.35-0.75 s intervals, alternately a 15 ms noise burst and a 100 ms voiced
    syllable (150 Hz harmonics, fast attack): sharp onsets for any engine to keep."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * rate), dtype=np.float32)
    t, k = 0.2, 0
    while t < seconds - 0.3:
        i = int(t * rate)
        if k % 2 == 0:
            n = int(0.015 * rate)
            x[i:i + n] = np.clip(rng.standard_normal(n) * 0.2, -0.6, 0.6) * np.hanning(n)
        else:
            n = int(0.1 * rate)
            tt = np.arange(n) / rate
            tone = sum(np.sin(2 * np.pi * 150 * h * tt) / h for h in range(1, 10))
            x[i:i + n] = 0.25 * tone / np.abs(tone).max() * np.minimum(1, tt / 0.003) * np.exp(-tt / 0.05)
        t += rng.uniform(0.35, 0.75)
        k += 1
    return x


def envelope(x: np.ndarray, hop: int) -> np.ndarray:
    n = len(x) // hop
    return np.sqrt(np.mean(np.square(x[:n * hop].reshape(n, hop), dtype=np.float64), axis=1))


def find_delay(mic: np.ndarray, played: np.ndarray, rate: int) -> tuple[float, float]:
    """(delay of `played` behind `mic` in samples, Pearson r of the energy envelopes at that lag)."""
    from scipy.signal import correlate

    hop = rate // 1000
    a, b = envelope(mic, hop), envelope(played, hop)
    a, b = a - a.mean(), b - b.mean()
    max_lag = min(int(MAX_LAG_S * 1000), len(a) // 2)
    c = correlate(b, a, mode="full", method="fft")[len(a) - 1:len(a) - 1 + max_lag]
    lag = int(np.argmax(c))
    x, y = a[:len(a) - lag], b[lag:]
    r = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
    coarse = lag * hop                                         # refine on the waveforms within +-3 ms
    lo, hi = max(0, coarse - 3 * hop), coarse + 3 * hop
    w = correlate(played, mic, mode="full", method="fft")[len(mic) - 1:]
    fine = lo + int(np.argmax(np.abs(w[lo:hi])))
    peak = abs(w[fine]) / (np.linalg.norm(mic) * np.linalg.norm(played) + 1e-12)
    return float(fine if peak > 0.3 else coarse), r


# ----------------------------------------------------------------------------------------------- the app and page

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(workspace: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--root", str(workspace), "--port", str(port),
                             "--device", "cpu"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start in 180 s")


def chromium_args(mic_wav: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic_wav}",
            "--autoplay-policy=no-user-gesture-required"]


def transport_times(trace: np.ndarray, rate: int, latency_ms: float) -> dict:
    """From the socket worker's trace of mic messages (sent) and output messages (received): the round trip
    (output k received - mic message holding sample k + latency sent) and how far the audio thread's mic messages
    strayed from its own clock (render stalls: audio handed over in bursts)."""
    mic, out = trace[trace[:, 2] == 0], trace[trace[:, 2] == 1]
    if len(mic) < 10 or len(out) < 10:
        return {}
    audio_ms = 1000 * (mic[:, 1] - mic[0, 1]) / rate
    stray = (mic[:, 0] - mic[0, 0]) - audio_ms
    stray -= np.polyval(np.polyfit(audio_ms, stray, 1), audio_ms)   # the two clocks' drift is not a stall
    stray -= np.percentile(stray, 1)
    starts = mic[:, 1]
    lat = int(round(latency_ms * rate / 1000))
    j = np.searchsorted(starts, out[:, 1] + lat, side="right") - 1
    ok = j >= 0
    rtt = out[ok, 0] - mic[j[ok], 0]
    return {"rtt_p50_ms": float(np.percentile(rtt, 50)), "rtt_p95_ms": float(np.percentile(rtt, 95)),
            "rtt_max_ms": float(rtt.max()), "audio_stall_p95_ms": float(np.percentile(stray, 95)),
            "audio_stall_max_ms": float(stray.max())}


def run_one(page, settings: dict, settle_s: float, seconds: float) -> dict:
    """Start a session from the page's script, let it settle, record; returns the measurement."""
    page.evaluate("s => window.voiceappLive.start(s)", settings)
    page.wait_for_function("() => ['running', 'stopped'].includes(window.voiceappLive.state)", timeout=900_000)
    if page.evaluate("window.voiceappLive.state") == "stopped":
        return {"error": page.evaluate("window.voiceappLive.error") or "stopped"}
    page.wait_for_timeout(int(settle_s * 1000))
    before = page.evaluate("() => { const h = window.voiceappLive.history; return h.length ? h.at(-1).t : 0; }")
    page.evaluate("() => window.voiceappLive.traceTransport(true)")
    rec = page.evaluate("s => window.voiceappLive.record(s)", seconds)
    trace = np.array(page.evaluate("() => window.voiceappLive.traceTransport(false)"), dtype=np.float64).reshape(-1, 3)
    history = page.evaluate("t => window.voiceappLive.history.filter((h) => h.t >= t)", before)
    page.evaluate("window.voiceappLive.stop()")
    page.wait_for_timeout(300)
    rate = int(rec["rate"])
    mic = np.frombuffer(base64.b64decode(rec["mic"]), dtype=np.float32)
    played = np.frombuffer(base64.b64decode(rec["played"]), dtype=np.float32)
    lag, r = find_delay(mic, played, rate)
    device_ms = history[-1]["device_ms"] if history else 1000 * (rec["baseLatency"] + rec["outputLatency"])
    loads = np.array([h["load"] for h in history if h.get("load") is not None] or [np.nan])
    worklet = [h["worklet"] for h in history if h.get("worklet")]
    starved = (worklet[-1]["starved"] - worklet[0]["starved"]) / rate * 1000 if len(worklet) > 1 else float("nan")
    shown = [h["measured_ms"] for h in history if h.get("measured_ms") is not None]
    return {"in_page_ms": 1000 * lag / rate, "device_ms": device_ms, "e2e_ms": 1000 * lag / rate + device_ms,
            "r": r, "shown_ms": float(np.mean(shown)) if shown else float("nan"),
            "page_median_ms": (rec["delayMedianMs"] or float("nan")) + device_ms,
            "algorithmic_ms": history[-1]["latency_ms"] if history else float("nan"),
            "load_mean": float(np.nanmean(loads)), "load_p95": float(np.nanpercentile(loads, 95)),
            "levels": sorted({h.get("level") for h in history if h.get("level")}),
            "degraded": float(np.mean([bool(h.get("degraded")) for h in history])) if history else 0.0,
            "dropped": (history[-1].get("dropped", 0) - history[0].get("dropped", 0)) if history else 0,
            "starved_ms": starved,
            "margin_ms": 1000 * worklet[-1]["marginFrames"] / rate if worklet else float("nan"),
            "warning": next((h["warning"] for h in reversed(history) if h.get("warning")), None),
            **transport_times(trace, int(rec["rate"]), history[-1]["latency_ms"] if history else 0.0),
            "rate": rate, "played_peak": float(np.abs(played).max()), "mic_peak": float(np.abs(mic).max())}


def engine_of(workspace: Path, model: str) -> str:
    if model == "passthrough":
        return "passthrough"
    from voiceapp.voices.file import read_voice_info
    from voiceapp.voices.store import get_model
    from voiceapp.workspace import Workspace

    info = read_voice_info(get_model(Workspace(workspace), model).path)
    return f"{info.engine} {info.sample_rate // 1000}k {info.version if info.engine == 'rvc' else ''}".strip()


# ----------------------------------------------------------------------------------------------- report

def table(rows: list[dict]) -> str:
    nan = float("nan")
    head = ("| model | engine | block ms | end to end ms (measured) | in page ms | page shows ms (median) "
            "| algorithmic ms "
            "| envelope r | load mean / p95 | level used | degraded / dropped | starved ms | margin ms "
            "| round trip p50 / p95 / max ms | audio stall max ms |")
    lines = [head, "|" + "---|" * 15]
    for row in rows:
        m = row["m"]
        if "error" in m:
            lines.append(f"| {row['model']} | {row['engine']} | {row['block']} | error: {m['error'][:80]} |"
                         + " |" * 11)
            continue
        lines.append(f"| {row['model']} | {row['engine']} | {row['block']} | **{m['e2e_ms']:.0f}** | "
                     f"{m['in_page_ms']:.0f} | {m['page_median_ms']:.0f} | {m['algorithmic_ms']:.0f} | {m['r']:.2f} | "
                     f"{m['load_mean']:.2f} / {m['load_p95']:.2f} | {', '.join(m['levels'])} | "
                     f"{100 * m['degraded']:.0f}% / {m['dropped']} | {m['starved_ms']:.0f} | {m['margin_ms']:.0f} | "
                     f"{m.get('rtt_p50_ms', nan):.0f} / {m.get('rtt_p95_ms', nan):.0f} / "
                     f"{m.get('rtt_max_ms', nan):.0f} | "
                     f"{m.get('audio_stall_max_ms', nan):.0f} |")
    warnings = {row["model"]: row["m"].get("warning") for row in rows if row["m"].get("warning")}
    for model, warning in warnings.items():
        lines.append(f"\nwarning shown for {model}: {warning}")
    return "\n".join(lines)


def prepare(workspace: Path) -> None:
    """Add `rvc_full` (full v2 40k, random weights, random HuBERT-base as contentvec, an index) to the workspace."""
    sys.path.insert(0, str(ROOT / "bench"))
    import shutil

    from infer import prepare as prepare_rvc

    from voiceapp.workspace import Workspace

    made = prepare_rvc(workspace, 4.0)
    ws = Workspace(workspace)
    src, dst = ws.voice_dir("bench"), ws.voice_dir("rvc_full")
    if not dst.exists():
        dst.mkdir(parents=True)
        shutil.copy(made["model"], ws.voice_model_path("rvc_full"))
        shutil.copy(made["index"], dst / "added_rvc_full.index")
    shutil.rmtree(src, ignore_errors=True)
    print(f"prepared {ws.voice_model_path('rvc_full')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--models", nargs="+", default=["passthrough"])
    parser.add_argument("--blocks", nargs="+", type=int, default=[40, 60, 100, 200])
    parser.add_argument("--seconds", type=float, default=8.0, help="recorded per run")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of running before the recording")
    parser.add_argument("--f0-method", default="pm")
    parser.add_argument("--gate-db", type=float, default=-50.0)
    parser.add_argument("--latency-hint", default=None, help="AudioContext latencyHint: interactive, balanced or "
                        "seconds (default: the page's, 0 = the smallest buffer the device allows)")
    parser.add_argument("--jitter", default=None, help='the page\'s margin policy as JSON, e.g. {"growth": 0.5}')
    parser.add_argument("--send-frames", type=int, default=None, help="samples per socket message (page default)")
    parser.add_argument("--nice", type=int, default=0, help="run the app and the browser at this niceness (e.g. -10, "
                        "root only): ahead of other work on a shared machine, as a desktop runs its audio")
    parser.add_argument("--prepare", action="store_true", help="add the rvc_full model to WORKSPACE and exit")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.workspace)
        return 0
    from playwright.sync_api import sync_playwright

    if args.nice:
        os.nice(args.nice)              # inherited by the app and Chromium started below
    tmp = Path(tempfile.mkdtemp(prefix="voiceapp-live-bench-"))
    import soundfile as sf

    mic_wav = tmp / "bursts.wav"
    sf.write(mic_wav, burst_signal(), FILE_RATE, subtype="PCM_16")
    print(f"# {os.cpu_count()} cores, niceness {os.nice(0)}, load average before {os.getloadavg()[0]:.2f}; Chromium "
          f"{subprocess.run([CHROMIUM, '--version'], capture_output=True, text=True).stdout.strip()}", flush=True)
    proc, url = start_app(args.workspace, tmp / "server.log")
    rows = []
    cpu0 = time.process_time()
    try:
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic_wav))
            page = browser.new_page()
            page.set_default_timeout(900_000)
            page.goto(url)
            page.wait_for_function("() => window.voiceappLive !== undefined")
            if args.latency_hint is not None:
                hint = args.latency_hint
                page.evaluate("h => { window.voiceappLive.latencyHint = h; }",
                              float(hint) if hint.replace(".", "", 1).isdigit() else hint)
            if args.jitter:
                page.evaluate("j => { Object.assign(window.voiceappLive.jitter, JSON.parse(j)); }", args.jitter)
            if args.send_frames:
                page.evaluate("n => { window.voiceappLive.sendFrames = n; }", args.send_frames)
            for model in args.models:
                engine = engine_of(args.workspace, model)
                for block in args.blocks:
                    settings = {"model": model, "block_ms": block, "lookahead_ms": 20, "f0_method": args.f0_method,
                                "gate_db": args.gate_db, "transpose": 0, "blend": 0.75}
                    m = run_one(page, settings, args.settle, args.seconds)
                    rows.append({"model": model, "engine": engine, "block": block, "m": m})
                    short = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in m.items()}
                    print(f"{model} {block} ms: {short}; load average {os.getloadavg()[0]:.2f}", flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"# load average after {os.getloadavg()[0]:.2f}; bench process CPU {time.process_time() - cpu0:.1f} s")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
