"""The same runs under two sets of overrides, back to back: what a setting costs or saves, and whether the
runs still learn the same.

    python -m hut.bench.variants [a=[...]] [b=[...]] [runs=4] [rounds=1]   (configs/cli/variants.yaml)

The workload: the first ``runs`` runs of ``experiment`` (as ``make demo`` runs them, full length unless
``overrides`` shorten them), into a fresh results folder per variant and round, so nothing is skipped. One
warm-up run first (the tokenisation cache, the weights' digest). By default A is the demo in float32 and B
its bf16 autocast. Prints each variant's wall time, the ratio A / B (above 1: B is faster), each run's dev
score (and tune score) under both, and the load average before and after: on a machine shared with other
work the ratio is the figure to keep, never the seconds.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from hut.bench.sweeps import experiment_jobs, timed
from hut.config import cli_options

PROG = "hut.bench.variants"


def _scores(record: dict) -> str:
    """The last epoch's metrics (train loss, dev and tune scores)."""
    last = record.get("last") or {}
    return " ".join(f"{k}={v:.4f}" for k, v in last.items() if k not in ("epoch", "step") and isinstance(v, float))


def main(argv: list[str] | None = None) -> int:
    s = cli_options(list(sys.argv[1:] if argv is None else argv), "variants", PROG)
    if not s["data_dir"] or not (Path(s["data_dir"]) / "glue").is_dir():
        raise SystemExit(f"{PROG}: needs real GLUE data: set HUT_DATA (e.g. ../shared/data) or data_dir=")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(int(s["threads"]))
    variants = {"A": list(s["a"]), "B": list(s["b"])}
    load0 = os.getloadavg()
    walls: dict[str, list[float]] = {"A": [], "B": []}
    scores: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="hut-variants-") as tmp:
        def jobs(name: str, runs: int, folder: str):
            return experiment_jobs(s["experiment"], runs, s["data_dir"], Path(tmp) / folder,
                                   [*s["overrides"], *variants[name]])

        timed(jobs("A", 1, "warm"), 1, PROG)
        for i in range(int(s["rounds"])):
            for name in (("A", "B") if i % 2 == 0 else ("B", "A")):
                batch = jobs(name, int(s["runs"]), f"{name}{i}")
                seconds, records = timed(batch, 1, PROG)
                walls[name].append(seconds)
                scores[name] = [f"{job.label}: {_scores(r)}" for job, r in zip(batch, records)]
                print(f"round {i + 1}: {name} {seconds:.1f} s for {len(batch)} runs", flush=True)
    load1 = os.getloadavg()
    for name, over in variants.items():
        print(f"{name} ({' '.join(over) or 'no overrides'}):")
        for line in scores[name]:
            print(f"  {line}")
    a, b = sum(walls["A"]), sum(walls["B"])
    print(f"A: {a:.1f} s; B: {b:.1f} s; A / B = {a / b:.2f} ({'B' if a > b else 'A'} faster) over {s['rounds']} "
          f"round(s) of {s['runs']} runs ({s['experiment']}, {' '.join(s['overrides'])}, {s['threads']} thread(s)); "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
