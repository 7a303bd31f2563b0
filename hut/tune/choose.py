"""The selection rule (a pure function of the scores): which grid point wins, and whether it sits at an edge.

The winner has the largest mean over the search seeds of its score on the selection split; ties go to
the smaller value (the first in the increasing grid). A run whose loss became non-finite scores minus
infinity: a learning rate that diverges is a bad one, not a missing one. When the winner is the
grid's first or last point the best value may lie outside the grid: :attr:`Choice.at_edge` says which
edge and :attr:`Choice.add` the value one grid step beyond it (the grid's own ratio there).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Point:
    value: float
    scores: Mapping[int, float]  # search seed -> score on the selection split (-inf: diverged)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values()) if self.scores else -math.inf

    @property
    def std(self) -> float | None:
        """The sample standard deviation over the search seeds (None for one seed or a diverged one)."""
        vals = list(self.scores.values())
        if len(vals) < 2 or not all(math.isfinite(v) for v in vals):
            return None
        return statistics.stdev(vals)


@dataclass(frozen=True)
class Choice:
    points: tuple[Point, ...]
    chosen: float
    at_edge: str | None  # "low" (the grid's smallest value won) | "high" (its largest) | None
    add: float | None  # the value to add beyond that edge

    def edge_message(self, where: str, key: str, protocol: str) -> str | None:
        """One plain line when the winner is at the grid's edge (None inside it)."""
        if self.at_edge is None:
            return None
        side, beyond = ("smallest", "below") if self.at_edge == "low" else ("largest", "above")
        return (f"{where}: the best {key} {self.chosen:g} is the grid's {side} value, so the best may lie {beyond} "
                f"the grid: add {self.add:g} to the grid (configs/tune/{protocol}.yaml) and rerun (only the new "
                f"points run)")


def choose(points: Sequence[Point]) -> Choice:
    """The winning point of an increasing grid (each point scored on every search seed)."""
    pts = tuple(sorted(points, key=lambda p: p.value))
    if not pts or any(not p.scores for p in pts):
        raise ValueError("every grid point needs a score on every search seed before one is chosen")
    means = [p.mean for p in pts]
    best = max(means)
    if best == -math.inf:
        raise ValueError("every grid point diverged (non-finite loss): the grid lies above any usable value")
    i = means.index(best)  # the first of equal means: the smaller value
    edge, add = None, None
    if i == 0:
        edge, add = "low", pts[0].value / (pts[1].value / pts[0].value)
    elif i == len(pts) - 1:
        edge, add = "high", pts[-1].value * (pts[-1].value / pts[-2].value)
    return Choice(pts, pts[i].value, edge, None if add is None else float(f"{add:.6g}"))
