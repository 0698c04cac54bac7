"""Soak benchmark: does the server's memory stay flat over many conversions? (issue 14)

    .venv/bin/python bench/soak.py [--n 50] [--via handler|http] [--size full|light|tiny]
                                   [--encoder contentvec|fake] [--min-s 2] [--max-s 9] [--threads 2]

Converts `--n` generated phrases of varying length (each a new length, as real uploads are) with RVC's v2 40k
voice model (random weights; `--size` tiny for a quick run), a random-weight HuBERT-base as the content
encoder (ContentVec's shapes and cost; `--encoder fake` for the deterministic test encoder), pm pitch and an
index, and prints the resident memory (RSS) of the process that converts:

- `--via handler` (default): the Inference tab's "Convert" handler called in this process, as Gradio calls it
  (model, encoder and index from the app's cache, the result written to outputs/);
- `--via http`: the real app (`app.py`) in a child process, driven through its HTTP API with gradio_client
  (uploads, queue, results copied to the upload cache); the child's RSS is read from /proc.

RSS after the first `--warmup` conversions is the baseline; "growth per conversion" is the slope of a
least-squares line through the RSS after each later one (MiB per conversion). A benchmark: it prints numbers,
it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the Inference tab's settings by name, in the order of its controls (infer_tab._settings; neighbour blend: default)
SETTINGS = {"transpose_semitones": 0, "f0_method": "pm", "index_rate": 0.75, "filter_radius": 3, "rms_mix_rate": 0.25,
            "protect": 0.33, "resample_sr": 0, "speaker_id": 0, "seed": 0, "f0_curve": None}


def rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def prepare(root: Path, size: str, encoder: str, n: int, min_s: float, max_s: float) -> dict:
    """A workspace with a random-weight voice model (+ index, + random HuBERT-base), and `n` input files."""
    import numpy as np
    import torch

    from voiceapp.audio import save_audio
    from voiceapp.index.build import IndexConfig, make_ivf_index, n_lists_for
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model
    from voiceapp.workspace import Workspace

    ws = Workspace(root).ensure()
    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, True, size)
    embedder = "contentvec" if encoder == "contentvec" else "fake"
    model = export_voice_model(Synthesizer(cfg).state_dict(), cfg, ws.voice_model_path("soak"), epoch=1, step=1,
                               embedder=embedder, name="soak")
    if embedder == "contentvec" and not (ws.contentvec_dir / "config.json").exists():
        from transformers import HubertConfig, HubertModel

        HubertModel(HubertConfig()).save_pretrained(str(ws.contentvec_dir))  # HuBERT-base shapes, random weights
    dim = cfg.content_dim
    rows = np.random.default_rng(0).standard_normal((20_000, dim)).astype(np.float32)
    import faiss

    index = ws.voice_dir("soak") / "added_soak.index"
    faiss.write_index(make_ivf_index(rows, n_lists_for(len(rows)), IndexConfig()), str(index))
    rng = np.random.default_rng(1)
    inputs = []
    for i, seconds in enumerate(np.linspace(min_s, max_s, n)[rng.permutation(n)]):
        t = np.arange(int(seconds * 16000)) / 16000
        f0 = 150 + 60 * np.sin(2 * np.pi * 0.3 * t + i)
        audio = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.1 * t))
        inputs.append(str(save_audio(root / "inputs" / f"take_{i:03d}.wav", audio.astype(np.float32), 16000)))
    return {"model": str(model), "index": str(index), "inputs": inputs}


def slope(values: list[float]) -> float:
    import numpy as np

    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values)), np.asarray(values), 1)[0])


def report(label: str, before: float, series: list[float], warmup: int, seconds: float) -> None:
    import numpy as np

    base = series[warmup - 1] if len(series) >= warmup else before
    later = series[warmup - 1:]
    window = max(1, min(10, len(later) // 3))
    print(f"\n{label}: {len(series)} conversions in {seconds:.0f} s")
    print(f"RSS before the first conversion {before:.0f} MiB; after {warmup} (warm-up) {base:.0f} MiB; "
          f"after {len(series)}: {series[-1]:.0f} MiB (max {max(series):.0f})")
    print(f"growth after warm-up: {series[-1] - base:+.0f} MiB over {len(series) - warmup} conversions; "
          f"slope {slope(later):+.2f} MiB per conversion; median of the first {window} after warm-up "
          f"{np.median(later[:window]):.0f} MiB, of the last {window} {np.median(later[-window:]):.0f} MiB")
    print("RSS after each conversion (MiB): " + " ".join(f"{v:.0f}" for v in series))


def via_handler(spec: dict, root: Path, warmup: int) -> None:
    from voiceapp.services import Services
    from voiceapp.ui import infer_tab
    from voiceapp.workspace import Workspace

    services = Services(workspace=Workspace(root), device="cpu")
    before, series, started = rss_mib(), [], time.perf_counter()
    for i, path in enumerate(spec["inputs"]):
        infer_tab.convert_one(services, spec["model"], spec["index"], path, "wav", SETTINGS)
        series.append(rss_mib())
        if (i + 1) % 10 == 0 or i + 1 == len(spec["inputs"]):
            print(f"  {i + 1:3d} conversions: RSS {series[-1]:.0f} MiB, cache {len(services.cache)} item(s)",
                  flush=True)
    report("Inference tab handler, in process", before, series, warmup, time.perf_counter() - started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def via_http(spec: dict, root: Path, warmup: int, threads: int) -> None:
    from gradio_client import Client, handle_file

    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--root", str(root), "--port", str(port),
                             "--device", "cpu"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"the app did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(1)
        from voiceapp.infer.pipeline import InferConfig

        settings = [*SETTINGS.values(), InferConfig().neighbour_blend]  # the API wants every input of the tab
        before, series, started = rss_mib(proc.pid), [], time.perf_counter()
        for i, path in enumerate(spec["inputs"]):
            client.predict(spec["model"], spec["index"], handle_file(path), "wav", *settings, api_name="/_one")
            series.append(rss_mib(proc.pid))
            if (i + 1) % 10 == 0 or i + 1 == len(spec["inputs"]):
                print(f"  {i + 1:3d} conversions: server RSS {series[-1]:.0f} MiB", flush=True)
        report("app.py over HTTP (gradio_client)", before, series, warmup, time.perf_counter() - started)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="conversions (default 50)")
    parser.add_argument("--via", choices=("handler", "http"), default="handler")
    parser.add_argument("--size", choices=("full", "light", "tiny"), default="full", help="synthesizer size")
    parser.add_argument("--encoder", choices=("contentvec", "fake"), default="contentvec")
    parser.add_argument("--min-s", type=float, default=2.0, help="shortest input (s)")
    parser.add_argument("--max-s", type=float, default=9.0, help="longest input (s)")
    parser.add_argument("--warmup", type=int, default=5, help="conversions before the baseline")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--root", type=Path, default=None, help="workspace (default: a temporary folder)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="voiceapp-soak-") as tmp:
        root = (args.root or Path(tmp)).resolve()
        spec = prepare(root, args.size, args.encoder, args.n, args.min_s, args.max_s)
        print(f"{args.n} inputs of {args.min_s:g}-{args.max_s:g} s; model v2 40k {args.size}, encoder {args.encoder}, "
              f"pm, index; {args.threads} thread(s); via {args.via}")
        if args.via == "handler":
            via_handler(spec, root, args.warmup)
        else:
            via_http(spec, root, args.warmup, args.threads)


if __name__ == "__main__":
    main()
