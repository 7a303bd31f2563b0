"""A small timed sweep for the run-level benchmarks (``hut.bench.workers``, ``hut.bench.variants``): the
first runs of an experiment as :func:`hut.tune.jobs.run_jobs` runs them for ``make demo``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from hut.config import experiments as ex
from hut.tune.jobs import Workers, run_jobs
from hut.tune.search import Job


def experiment_jobs(experiment: str, runs: int, data_dir: str, results_dir: Path,
                    overrides: Sequence[str] = ()) -> list[Job]:
    """The first ``runs`` runs of ``experiment`` (its cells in sweep order, seed by seed), on the local data
    in ``data_dir``, writing to ``results_dir``, each with ``overrides``."""
    extra = (f"data.dir={data_dir}", "data.source=local", f"results_dir={results_dir}", *overrides)
    jobs = [Job(f"{' '.join(c.overrides)} seed={seed}", tuple(c.run_overrides(seed, extra)))
            for seed in ex.seeds(experiment) for c in ex.cells(experiment)]
    return jobs[: int(runs)]


def timed(jobs: list[Job], workers: Workers | int, prog: str) -> tuple[float, list[dict]]:
    """(wall seconds, the records) of running ``jobs``; a run that does not finish stops ``prog``."""
    t0 = time.perf_counter()
    records = run_jobs(jobs, workers, log=lambda line: None)
    seconds = time.perf_counter() - t0
    if any(r.get("status") != "success" for r in records):
        raise SystemExit(f"{prog}: a run did not finish: {[r.get('status') for r in records]}")
    return seconds, records
