"""Timing that resolves about 1% on a shared CPU, and the statistics printed beside every ratio.

* CPU: each step is timed by the *thread's* CPU time (``time.thread_time``) with one intra-op thread,
  so other processes on the machine do not count; the wall-clock time is recorded too (labelled
  "wall"). CUDA: CUDA events around the step, after a synchronise.
* Candidates are interleaved: every round times one step of each, in an order that rotates from
  round to round, after warm-up rounds that are discarded; Python's garbage collector is off.
* A ratio A/B is the geometric mean of the per-round ratios (the same round: the same machine
  state), with a bootstrap 95% interval over rounds (:func:`paired_ratio`).
* Repeatability: the whole measurement is repeated (``repeats``); two repeats agree when their
  intervals overlap (:func:`agree`).
"""
from __future__ import annotations

import gc
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch


@dataclass
class Timing:
    cpu: list[float] = field(default_factory=list)  # thread CPU seconds (CUDA: event seconds)
    wall: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")


class Timer:
    """``timer(fn) -> (cpu_or_event_seconds, wall_seconds)``."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> tuple[float, float]:
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            w0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0, time.perf_counter() - w0
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        return time.thread_time() - c0, time.perf_counter() - w0


def interleaved(items: Sequence[Any], step: Callable[[Any], tuple[float, float]], rounds: int, warmup: int,
                log: Callable[[str], None] | None = None) -> dict[Any, Timing]:
    """Round-robin over ``items`` (the start rotates each round); warm-up rounds are not recorded."""
    out = {it: Timing() for it in items}
    n = len(items)
    for r in range(warmup + rounds):
        order = [items[(r + i) % n] for i in range(n)]
        gc.collect()
        gc.disable()
        try:
            for it in order:
                cpu, wall = step(it)
                if r >= warmup:
                    out[it].cpu.append(cpu)
                    out[it].wall.append(wall)
        finally:
            gc.enable()
        if log and (r + 1) % max(1, (warmup + rounds) // 5) == 0:
            log(f"  round {r + 1}/{warmup + rounds}{' (warm-up)' if r < warmup else ''}")
    return out


@dataclass(frozen=True)
class Ratio:
    value: float  # geometric mean of the per-round ratios
    lo: float  # bootstrap 95% interval
    hi: float
    n: int

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"

    def as_dict(self) -> dict[str, float]:
        return {"ratio": self.value, "ci95": [self.lo, self.hi], "rounds": self.n}


def paired_ratio(a: Sequence[float], b: Sequence[float], n_boot: int = 4000, seed: int = 0) -> Ratio | None:
    """a/b over paired rounds: exp(mean log(a_i/b_i)) and its percentile-bootstrap 95% interval."""
    logs = [math.log(x / y) for x, y in zip(a, b) if x > 0 and y > 0]
    if len(logs) < 2:
        return None
    rng = random.Random(seed)
    n = len(logs)
    boots = sorted(statistics.fmean(rng.choices(logs, k=n)) for _ in range(n_boot))
    lo, hi = boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]
    return Ratio(math.exp(statistics.fmean(logs)), math.exp(lo), math.exp(hi), n)


def agree(a: Ratio | None, b: Ratio | None) -> bool | None:
    """Two repeats of one ratio agree when their 95% intervals overlap."""
    if a is None or b is None:
        return None
    return a.lo <= b.hi and b.lo <= a.hi
