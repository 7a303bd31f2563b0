"""Two processes of one thread against one process of two threads, on one small sweep, back to back.

    python -m hut.bench.workers [runs=4] [workers=2] [threads=2] [rounds=1]   (configs/cli/workers.yaml)

The workload: the first ``runs`` runs of ``experiment`` (its cells in sweep order, seeds from its
first), each shortened by ``overrides``, through :func:`hut.tune.jobs.run_jobs` as ``make demo`` runs
them, into a fresh results folder each time (so nothing is skipped):

* **A**: one process after another in this process, torch on ``threads`` threads;
* **B**: ``workers`` worker processes of one torch thread each, sharing the runs.

One warm-up run first (the tokenisation cache, the weights' digest). Prints each variant's wall time,
the ratio A / B (above 1: the workers are faster), and the load average before and after: on a
machine shared with other work the ratio is the figure to keep, never the seconds.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from hut.bench.sweeps import experiment_jobs, timed
from hut.config import cli_options


def main(argv: list[str] | None = None) -> int:
    s = cli_options(list(sys.argv[1:] if argv is None else argv), "workers", "hut.bench.workers")
    if not s["data_dir"] or not (Path(s["data_dir"]) / "glue").is_dir():
        raise SystemExit("hut.bench.workers: needs real GLUE data: set HUT_DATA (e.g. ../shared/data) or data_dir=")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(int(s["threads"]))
    load0 = os.getloadavg()
    walls: dict[str, list[float]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="hut-workers-") as tmp:
        def jobs(runs: int, folder: str):
            return experiment_jobs(s["experiment"], runs, s["data_dir"], Path(tmp) / folder, s["overrides"])

        timed(jobs(1, "warm"), 1, "hut.bench.workers")
        for i in range(int(s["rounds"])):
            for name in (("A", "B") if i % 2 == 0 else ("B", "A")):
                batch = jobs(int(s["runs"]), f"{name}{i}")
                walls[name].append(timed(batch, 1 if name == "A" else int(s["workers"]), "hut.bench.workers")[0])
                print(f"round {i + 1}: {name} {walls[name][-1]:.1f} s for {len(batch)} runs", flush=True)
    load1 = os.getloadavg()
    a, b = sum(walls["A"]), sum(walls["B"])
    print(f"A: 1 process × {s['threads']} threads: {a:.1f} s; B: {s['workers']} processes × 1 thread: {b:.1f} s; "
          f"A / B = {a / b:.2f} ({'B' if a > b else 'A'} faster) over {s['rounds']} round(s) of {s['runs']} "
          f"runs ({s['experiment']}, {' '.join(s['overrides'])}); load average before {load0[0]:.2f}, after "
          f"{load1[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
