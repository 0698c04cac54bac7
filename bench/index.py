"""Index build benchmark: `build_index` on N x 768 feature rows (default 100,000 = about 33 min of speech).

    .venv/bin/python bench/index.py [--rows 100000] [--dim 768] [--threads 1]

Writes the rows as 200-frame feature files of a scratch experiment and times the whole stage (read, shuffle,
[k-means above 200,000 rows], IVF training, batched adds, atomic write, copy); prints wall and CPU seconds
and the index's search speed (k=8, nprobe=1) for one minute of 50 Hz query frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import faiss
    import numpy as np

    from voiceapp.index.build import IndexConfig, build_index, read_index_sidecar
    from voiceapp.index.retrieval import blend, load_index
    from voiceapp.workspace import Workspace

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((500, args.dim)).astype(np.float32)  # clustered, like real content features
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp)).ensure()
        exp = ws.experiment("bench")
        exp.content_dir.mkdir(parents=True)
        clips = {}
        for i, start in enumerate(range(0, args.rows, 200)):
            n = min(200, args.rows - start)
            rows = centers[rng.integers(0, len(centers), n)] + 0.3 * rng.standard_normal((n, args.dim))
            np.save(exp.content_dir / f"clip_{i:05d}.npy", rows.astype(np.float32))
            clips[f"clip_{i:05d}"] = {"frames": 2 * n}
        manifest = {"dataset": "bench", "encoder": "synthetic", "dim": args.dim,
                    "version": "v2" if args.dim == 768 else "v1", "f0_method": "none", "clips": clips}
        exp.features_manifest_path.write_text(json.dumps(manifest))
        wall, cpu = time.perf_counter(), time.process_time()
        path = build_index(exp, IndexConfig(), voices_dir=ws.voice_dir("bench"))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        info = read_index_sidecar(path)
        retrieval = load_index(path)
        queries = (centers[rng.integers(0, len(centers), 3000)]
                   + 0.3 * rng.standard_normal((3000, args.dim))).astype(np.float32)
        started = time.perf_counter()
        blend(queries, retrieval.index, retrieval.big_npy, 0.75)
        search_s = time.perf_counter() - started
    print(f"build_index: {args.rows:,} x {args.dim} rows -> {path.name}: {info['n_lists']} lists, "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU ({args.threads} thread(s), load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    print(f"retrieval blend (k=8, nprobe=1): {search_s:.3f} s for 60 s of 50 Hz frames "
          f"({search_s / 60:.4f} s per second of audio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
