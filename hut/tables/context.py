"""What every table builder gets: the runs, the problems found so far, the paper, the options."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hut.tables.runs import Cell, Problem, Run


@dataclass
class Context:
    runs: list[Run]
    problems: list[Problem]
    results_dir: str
    out_dir: Path
    experiments: Mapping[str, str]  # table -> the records' experiment name
    published: Mapping[str, Any]  # the paper's figures (hut.paper.published)
    measure_flops: bool = True
    flops_model: str = "roberta_large"
    summary: list[str] = field(default_factory=list)
    glue_rows: dict = field(default_factory=dict)  # Table 1's rows (average, cells, label), for Figure 3
    glue_tasks: list[str] = field(default_factory=list)
    verdicts: dict = field(default_factory=dict)  # table -> [hut.report.verdicts.Verdict], for the report

    def paper_rows(self, table: str) -> list[Mapping[str, Any]]:
        return list((self.published.get(table) or {}).get("rows") or [])

    def problem_notes(self, experiment: str) -> list[str]:
        """Problems whose path lies under this experiment's folder (corrupt files have only a path)."""
        out, seen = [], set()
        for p in self.problems:
            if p.path.split("/", 1)[0] == experiment and (p.path, p.message) not in seen:
                seen.add((p.path, p.message))
                out.append(f"Skipped `{p.path}`: {p.message}.")
        return out

    def summarise(self, key: str, lay, mine: Sequence[Run], cells: Iterable[Cell]) -> None:
        cells = list(cells)
        ok = sum(c.n for c in cells)
        failed = sum(len(c.failed) for c in cells)
        running = sum(len(c.running) for c in cells)
        missing = sum(len(c.missing) for c in cells)
        expected = sum(len(c.expected) for c in cells if c.expected is not None)
        self.summary.append(
            f"{key} <- experiment '{lay.experiment}': {ok} cell results from {len(mine)} records"
            + (f"; {missing} of {expected} expected seed-runs missing" if expected else "")
            + (f"; {failed} failed" if failed else "") + (f"; {running} running" if running else ""))
