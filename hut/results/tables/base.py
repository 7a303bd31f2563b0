"""What a table builder reads (:class:`Inputs`, never changed by a builder) and what it returns
(:class:`Built`: its table, verdicts, rows, progress, problems and summary lines).

Builders share nothing mutable: each returns everything it found, and the aggregator passes a
result on to whatever reads it (Table 1's rows to Figure 3 and the page, every table's verdicts to
the report). So the builders can run in any order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hut.results.judge.protocols import Search
from hut.results.render.table import Table
from hut.results.runs import Problem, Run
from hut.results.tables.progress import Progress


@dataclass(frozen=True)
class Inputs:
    runs: tuple[Run, ...]
    results_dir: str
    experiments: Mapping[str, str]  # table -> the records' experiment name
    published: Mapping[str, Any]  # the paper's figures (hut.config.paper.published)
    measure_flops: bool = True
    flops_model: str = "roberta_large"
    load_problems: tuple[Problem, ...] = ()  # records that could not be read
    searches: tuple[Search, ...] = ()  # the learning-rate searches' selection files (hut.results.judge.protocols)

    def paper_rows(self, table: str) -> list[Mapping[str, Any]]:
        return list((self.published.get(table) or {}).get("rows") or [])

    def problem_notes(self, experiment: str, found: Sequence[Problem] = ()) -> list[str]:
        """Notes for the problems under this experiment's folder: the unreadable records and those
        a builder ``found`` (corrupt files have only a path)."""
        out, seen = [], set()
        for p in [*self.load_problems, *found]:
            if p.path.split("/", 1)[0] == experiment and (p.path, p.message) not in seen:
                seen.add((p.path, p.message))
                out.append(f"Skipped `{p.path}`: {p.message}.")
        return out


@dataclass(frozen=True)
class RowResult:
    """One row of a table whose rows are methods: its average over the columns, its cells and label."""
    average: float | None
    cells: Mapping[str, Any]  # column -> hut.results.runs.Cell
    label: str | None


@dataclass(frozen=True)
class SeedCell:
    """One cell as the page plots it: every seed's value, the paper's figure and the verdict."""
    table: str
    experiment: str
    column: str  # task (or metric)
    column_label: str
    row: str  # the row's label
    method: str
    values: Mapping[int, float]  # seed -> value in printed units
    expected: tuple[int, ...] | None
    failed: Mapping[int, str] = field(default_factory=dict)
    paper: float | None = None
    paper_std: float | None = None
    verdict: str = ""
    statistic: str = "mean"


@dataclass(frozen=True)
class Built:
    table: Table
    verdicts: tuple = ()  # hut.results.judge.verdicts.Verdict of every cell that stands for a paper cell
    rows: Mapping[Any, RowResult] = field(default_factory=dict)  # method tables: row key -> its result
    columns: tuple[str, ...] = ()  # method tables: the column keys (Table 1: the tasks)
    cells: tuple[SeedCell, ...] = ()
    progress: Progress | None = None
    problems: tuple[Problem, ...] = ()  # found while building (duplicates, mixed configs, missing metrics)
    summary: tuple[str, ...] = ()
