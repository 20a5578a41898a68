"""Run one benchmark candidate in a fresh interpreter, so its imports, threads and memory peak are its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def threads() -> int:
    return int(os.environ.get("IDPROOF_THREADS") or os.cpu_count() or 1)


def run_worker(module: str, name: str, job: dict, tmp: Path, bar=None) -> dict:
    """``python -m module JOB OUT``; progress lines ``@@progress DONE TOTAL`` go to ``bar``."""
    job_path, out, err = tmp / f"{name}.job.json", tmp / f"{name}.result.json", tmp / f"{name}.stderr"
    job_path.write_text(json.dumps(job))
    n = str(threads())
    src = str(Path(__file__).resolve().parents[2])
    env = os.environ | {
        "IDPROOF_THREADS": n, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "PYTHONWARNINGS": "ignore",
    }  # fmt: skip
    with err.open("w") as ferr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(job_path), str(out)],
            stdout=subprocess.PIPE, stderr=ferr, env=env, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("@@progress") and bar is not None:
                done, total = map(int, line.split()[1:3])
                bar(done, total)
        rc = proc.wait()
    if rc != 0 or not out.is_file():
        tail = err.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"bench worker {name!r} failed (exit {rc}):\n{tail}")
    return json.loads(out.read_text())


def worker_main(run_job: Callable[[dict, Callable[[int, int], None]], dict], doc: str | None, argv: list[str] | None = None) -> int:
    """The worker side: read the job, run it with progress lines on stdout, write the result."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(doc, file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())

    def progress(done: int, total: int) -> None:
        print(f"@@progress {done} {total}", flush=True)

    result = run_job(job, progress)
    Path(argv[1]).write_text(json.dumps(result))
    return 0
