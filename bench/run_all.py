"""Run every benchmark in bench/ and write bench/RESULTS.md (one section per stage).

    .venv/bin/python bench/run_all.py [--only dataset,f0] [--timeout 1800]

Each benchmark is a script that prints Markdown tables; this collects them with the machine, the date and the
command that reproduces each one. A benchmark that fails or times out is reported as such; the rest still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ORDER = ["dataset", "separate", "f0", "features", "nets", "train", "index", "infer", "quality", "tts", "demo"]
# --quick: smaller runs of the slow benchmarks (fewer files/steps/methods, a shorter training budget).
QUICK_ARGS: dict[str, list[str]] = {
    "f0": ["--files", "3", "--crepe-files", "1", "--methods", "fcpe,crepe-tiny,crepe,harvest,pm,dio"],
    "nets": ["--steps", "1"],
    "train": ["--steps", "1"],
    "infer": ["--seconds", "30", "--methods", "harvest,fcpe", "--configs", "rvc,voiceapp,voiceapp-fp32"],
    "quality": ["--train-minutes", "6", "--files-per-source", "1"],
    "soak": ["--n", "20", "--size", "light"],
}


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        torch_version = torch.__version__
    except ImportError:
        gpu, torch_version = "no torch", "-"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; Python {platform.python_version()}, torch {torch_version}, "
            f"{platform.system()} {platform.release()}")


def scripts(only: set[str] | None) -> list[Path]:
    found = {p.stem: p for p in BENCH.glob("*.py") if p.stem not in {"run_all", "__init__"} and not p.stem.startswith("_")}
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    return [found[n] for n in names if not only or n in only]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="smaller runs of the slow benchmarks (QUICK_ARGS)")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    sections = [f"# Benchmark results\n\n- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- Machine: {machine()}\n"
                f"- Reproduce everything: `.venv/bin/python bench/run_all.py` (one stage: `--only NAME`)\n"]
    for script in scripts(only):
        rel = script.relative_to(ROOT)
        extra = QUICK_ARGS.get(script.stem, []) if args.quick else []
        command = " ".join([f".venv/bin/python {rel}", *extra])
        print(f"== {command}", flush=True)
        start = time.perf_counter()
        try:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            proc = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT, capture_output=True, text=True, env=env,
                                  timeout=args.timeout)
            body, status = proc.stdout.strip(), ("ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})")
            if proc.returncode != 0:
                body += "\n\n```\n" + proc.stderr.strip()[-3000:] + "\n```"
        except subprocess.TimeoutExpired as err:
            body = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            status = f"timed out after {args.timeout:.0f} s"
        wall = time.perf_counter() - start
        print(body, flush=True)
        sections.append(f"## {script.stem}\n\n`{command}` — {status}, {wall:.0f} s wall\n\n{body}\n")
    if only and args.out.exists():  # refresh just these sections of an existing report
        old = args.out.read_text(encoding="utf-8").split("\n## ")
        fresh = {sec.split("\n", 1)[0][3:]: sec for sec in sections[1:]}
        kept = [old[0]] + [("## " + sec) if sec.split("\n", 1)[0] not in fresh else fresh.pop(sec.split("\n", 1)[0])
                           for sec in old[1:]]
        sections = kept + list(fresh.values())
    args.out.write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
