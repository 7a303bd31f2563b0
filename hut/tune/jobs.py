"""Running a list of runs, each the overrides of one ``python -m hut.train`` job, through the trainer.

:func:`run_jobs` runs them one after another in this process (``workers=1``) or shares them among
worker processes of one torch thread each (``workers=N``): on a CPU, small models use two threads
poorly, and two one-thread processes keep both cores busy (``python -m hut.bench.workers`` measures
it). Every run goes through the run store as ``hut.train`` would (same identity, folder and record):
a finished run is skipped, a killed one resumes from its checkpoint, and the run's lock keeps two
processes, of this command or of another started beside it, from running one run twice. A run that
another live process holds is waited for (its record is asked for again every :data:`POLL` seconds)
until it is finished, or run here if that process has gone.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import torch

from hut.config import compose
from hut.trainer import run
from hut.tune.search import Job

POLL = 5.0  # seconds between looks at a run another process holds


def run_job(overrides: Sequence[str]) -> dict:
    """One run (its record; ``{"status": "running", "skipped": True}`` while another process holds it)."""
    return run(compose(list(overrides)), list(overrides))


def _one_thread() -> None:
    torch.set_num_threads(1)


def held_elsewhere(record: dict) -> bool:
    return bool(record.get("skipped")) and record.get("status") == "running"


class Workers:
    """Where jobs run: this process (``n=1``) or a pool of ``n`` spawned processes of one torch thread each,
    kept for every :func:`run_jobs` inside the ``with`` block (a worker starts once: imports take seconds)."""

    def __init__(self, n: int = 1):
        self.n, self.pool = int(n), None

    def __enter__(self) -> "Workers":
        if self.n > 1:  # spawn: a fresh interpreter, no torch threads forked mid-state
            self.pool = ProcessPoolExecutor(max_workers=self.n, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_one_thread)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


def run_jobs(jobs: Sequence[Job], workers: Workers | int = 1, log: Callable[[str], None] = print,
             prefix: str = "run") -> list[dict]:
    """Every job's record, in job order (duplicates, the same overrides twice, run once)."""
    if not isinstance(workers, Workers):
        with Workers(workers) as w:
            return run_jobs(jobs, w, log, prefix)
    unique = list(dict.fromkeys(jobs))
    n = len(unique)
    records: dict[Job, dict] = {}
    if workers.pool is None or n <= 1:
        for i, job in enumerate(unique, 1):
            log(f"[{prefix} {i}/{n}] {job.label}")
            records[job] = run_job(job.overrides)
    else:
        futures = {job: workers.pool.submit(run_job, job.overrides) for job in unique}
        for i, job in enumerate(unique, 1):
            records[job] = futures[job].result()
            log(f"[{prefix} {i}/{n}] {job.label}: {records[job].get('status')}")
    waiting = [j for j in unique if held_elsewhere(records[j])]
    while waiting:
        log(f"[{prefix}] waiting for {len(waiting)} run(s) another process is running "
            f"(first: {waiting[0].label}); asking again every {POLL:g} s")
        time.sleep(POLL)
        for job in waiting:
            records[job] = run_job(job.overrides)
        waiting = [j for j in waiting if held_elsewhere(records[j])]
    return [records[j] for j in jobs]
