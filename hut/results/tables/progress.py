"""How far a table's sweep is: its expected runs (cells × seeds) against the records (:func:`summarise`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping, Sequence

from hut.results.runs import Run


@dataclass
class Progress:
    """How far one table's sweep is: its expected runs (unit x seed) against the records."""

    table: str
    experiment: str
    seeds: tuple[int, ...]
    units: dict[Hashable, tuple[str, str]]  # unit -> (group, detail), in the sweep's order
    done: set = field(default_factory=set)  # (unit, seed) of successful runs
    failed: set = field(default_factory=set)
    running: set = field(default_factory=set)
    other: dict[str, int] = field(default_factory=dict)  # label of a row outside the sweep -> its records
    other_base: dict[str, str] = field(default_factory=dict)  # that label -> the sweep group it varies

    @property
    def expected(self) -> int:
        return len(self.units) * len(self.seeds)

    @property
    def shape(self) -> str:
        return f"{len(self.units)} cells × {len(self.seeds)} seeds"

    def to_run(self, unit: Hashable) -> list[int]:
        """The unit's seeds without a successful run (failed ones are to be rerun too)."""
        return [s for s in self.seeds if (unit, s) not in self.done]


def summarise(key: str, lay, mine: Sequence[Run], units: Mapping[Hashable, tuple[str, str]],
              unit_of: Callable[[Run], Hashable], outside: Callable[[Run], tuple[str, str | None]]) -> tuple[Progress, str]:
    """Count *runs* (not cells: Table 3's five metrics are one run) against the sweep's; (progress, summary line).

    ``units``: the sweep's run cells (seed excluded) -> (group, detail) for the log, e.g.
    ``("HUT", "cola")``; ``unit_of``: a record's unit; ``outside``: for a record whose unit the
    sweep does not have (an override variant, a row outside the sweep, an extra seed), its row's
    label and the group of the sweep row it varies (or None). Those are counted apart.
    """
    pr = Progress(key, lay.experiment, tuple(lay.seeds or ()), dict(units))
    for r in mine:
        u = unit_of(r)
        if u in pr.units and r.seed in pr.seeds:
            {"success": pr.done, "failed": pr.failed, "running": pr.running}[r.status].add((u, r.seed))
            continue
        # a seed the sweep does not run, or a row of its own
        label, base = (f"{' · '.join(pr.units[u])}, extra seeds", None) if u in pr.units else outside(r)
        pr.other[label] = pr.other.get(label, 0) + 1
        if base is not None:
            pr.other_base[label] = base
    other = sum(pr.other.values())
    line = (f"{key} <- experiment '{lay.experiment}': {len(pr.done)} of {pr.expected} expected runs finished "
            f"({pr.shape}); {pr.expected - len(pr.done) - len(pr.failed) - len(pr.running)} missing"
            + (f"; {len(pr.failed)} failed" if pr.failed else "") + (f"; {len(pr.running)} running" if pr.running else "")
            + (f"; {other} other records in {len(pr.other)} row(s) of their own, not counted (override variants, "
               f"rows or seeds outside the sweep)" if other else "") + ("" if pr.units else "; the sweep has no cells"))
    return pr, line
