"""What Tables 4 and 5 (HUT's ablation grids) share: their runs, row labels, expected seeds, the
verdicts of their HUT cells against the paper's printed figures, and the tail of the table.

A run's cell is read from its record's ``config.method`` (targets and r), never from its path.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from hut.results import paper as paper_figures
from hut.results.judge import stats
from hut.results.judge import verdicts as cell_verdicts
from hut.results.labels import method_label, model_label, targets_label, task_label, task_metric
from hut.results.layout import Layout
from hut.results.render.table import NA, Table, tex_escape
from hut.results.runs import Cell, Problem, Run, dedupe, mixed_problems
from hut.results.tables.base import Built, Inputs, SeedCell
from hut.results.tables.method_table import std_note
from hut.results.tables.progress import summarise

SCALE, DIGITS = 100.0, 1
GRID_FIELDS = ["table", "source", "experiment", "method", "task", "overrides", "targets", "r", "metric", "scale",
               "mean", "std",
               "median", "n", "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds", "extra_seeds", "values"]


def grid_runs(inp: Inputs, lay: Layout, problems: list[Problem]) -> list[Run]:
    mine = [r for r in inp.runs if r.experiment == lay.experiment]
    return dedupe(mine, lambda r: (r.task, r.method, r.model, r.targets, r.r, r.overrides), problems)


def metric_names(tasks: Iterable[str]) -> str:
    """What each task's score is, from its registered class, e.g. "MRPC: accuracy; CoLA: Matthews corr."."""
    return "; ".join(f"{task_label(t)}: {task_metric(t)[1]}" for t in dict.fromkeys(tasks))


def task_rank(task: str, lay: Layout) -> tuple:
    return (list(lay.tasks).index(task) if task in lay.tasks else len(lay.tasks), task)


def rlabel(method: str, task: str, overrides: str | None = None, tex: bool = False) -> str:
    """A grid row: the task, the method when not HUT, an override variant in full (its own row)."""
    s = task_label(task)
    s = s if method == "hut" else f"{s} ({method_label(method, tex=tex)})"
    return s + (f" [{tex_escape(overrides) if tex else overrides}]" if overrides else "")


def sweep_methods(lay: Layout) -> tuple[str, ...]:
    """The methods the sweep's rows run (the paper's Tables 4/5: HUT; the demo's rank table: HUT and
    hut_compact)."""
    return tuple(dict.fromkeys(r.key[0] for r in lay.rows)) or ("hut",)


def expects(lay: Layout, method: str, task: str, overrides: str | None, cell: tuple) -> tuple[int, ...] | None:
    """The sweep's seeds for a cell of the sweep; None (no completeness count) for anything else."""
    sweep = method in sweep_methods(lay) and overrides is None and task in lay.tasks and cell in lay.cells
    return lay.seeds if sweep else None


def _summarise(key: str, lay: Layout, mine: Sequence[Run]):
    """Runs against the sweep: one unit per (method, task, targets, r) of the sweep's rows; variants counted apart."""
    units = {(m, t, c[0], c[1], None): (rlabel(m, t), f"{','.join(c[0])} r={c[1]}")
             for m in sweep_methods(lay) for t in lay.tasks for c in lay.cells}
    return summarise(key, lay, mine, units, lambda r: (r.method, r.task, r.targets, r.r, r.overrides),
                     lambda r: (f"{rlabel(r.method, r.task, r.overrides)} · {targets_label(r.targets)} r={r.r}",
                                task_label(r.task) if r.method == "hut" and r.overrides else None))


def same_model(mine: Sequence[Run], key: str) -> bool:
    return {r.model for r in mine if r.method == "hut"} <= {paper_figures.PAPER_MODEL[key]}


def case(label: str, cell: Cell, paper: float, mine: Sequence[Run], key: str) -> cell_verdicts.CellCase:
    """A HUT cell against the paper's printed figure (no ±; HUT's own rows: mean of 5 seeds, Table 6's source)."""
    rep = cell_verdicts.reported("table1", {"method": "hut", "params": "0.9M"})
    models = sorted({r.model for r in mine if r.method == "hut"})
    paper_model = model_label(paper_figures.PAPER_MODEL[key])
    reason = "" if same_model(mine, key) else f"{', '.join(map(model_label, models))}, not {paper_model}"
    values = () if cell.mixed else tuple(v * SCALE for v in cell.values.values())
    return cell_verdicts.CellCase(label, values, stats.Reference(float(paper), None, rep.seeds),
                                  cell_verdicts.tolerance("score"),
                      rep.statistic, not reason, reason)


def judged(pending: list, cases: list) -> tuple[list, list]:
    """(the ours − paper rows, the verdicts of the table's HUT cells, Holm over the table): each
    verdict's marker beside its difference."""
    verdicts = cell_verdicts.judge([c for _, _, c in cases])
    for (d_row, i, _), v in zip(cases, verdicts):
        if v.marker and d_row[i] != NA:
            d_row[i] += f" {v.marker}"
    return [head + d_row for head, d_row in pending if any(x != NA for x in d_row)], verdicts


def seed_cell(key: str, lay: Layout, method: str, task: str, label: str, column: str, cell: Cell,
              verdict=None) -> SeedCell:
    ref = verdict.case.ref if verdict is not None else None
    return SeedCell(key, lay.experiment, task, task_label(task), f"{label} · {column}", method,
                    {} if cell.mixed else {s: v * SCALE for s, v in sorted(cell.values.items())}, cell.expected,
                    dict(cell.failed), ref.value if ref is not None else None, None,
                    verdict.kind if verdict is not None else "")


def models(mine: Sequence[Run], key: str, lay: Layout) -> str:
    """The models of the records; without records, those the sweep runs (else the paper's)."""
    names = (sorted({r.model for r in mine}) or sorted({row.key[2] for row in lay.rows})
             or [paper_figures.PAPER_MODEL[key]])
    return ", ".join(model_label(m) for m in names)


def caption_head(what: str, key: str, lay: Layout, mine: Sequence[Run]) -> str:
    """"<what>, experiment `E`: dev score × 100 (each task's metric) of the best epoch, model M": the
    tasks and models are those of the sweep and its records."""
    return (f"{what}, experiment `{lay.experiment}`: dev score × 100 "
            f"({metric_names([*lay.tasks, *(r.task for r in mine)])}) of the best epoch, model {models(mine, key, lay)}")


def finish(inp: Inputs, key: str, title: str, caption: str, header: list, body: list, ref: list, diff: list,
           notes: list[str], csv_rows: list[dict], cells: Mapping[Any, Cell], lay: Layout, mine: Sequence[Run],
           problems: list[Problem], verdicts: Sequence, where: Sequence[tuple],
           label_of: Callable[[tuple, Any], tuple[str, str]]) -> Built:
    """The tail Tables 4 and 5 share: notes on missing or odd records, the paper's blocks, the summary,
    and each cell for the page (``where``: the cell of each verdict; ``label_of``: a cell's row and
    column labels)."""
    by_cell = dict(zip(where, verdicts))
    seed_cells = [seed_cell(key, lay, rk[0], rk[1], *label_of(rk, col), cell, by_cell.get((rk, col)))
                  for (rk, col), cell in cells.items() if cell.values or (rk, col) in by_cell]
    problems = problems + mixed_problems(cells.values())
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` under `{inp.results_dir}` yet.")
    notes += inp.problem_notes(lay.experiment, problems)
    notes += cell_verdicts.table_notes(verdicts)
    if not diff:
        notes.append("Ours − paper: no HUT cell of ours on the paper's model "
                     f"({model_label(paper_figures.PAPER_MODEL[key])}).")
    progress, line = _summarise(key, lay, mine)
    blocks = [(None, body), (paper_figures.block_title(key), ref)]
    blocks += [(paper_figures.differences_title(key), diff)] if diff else []
    table = Table(key, title, [caption, std_note(lay.seeds)], header, blocks, notes, GRID_FIELDS, csv_rows)
    return Built(table, tuple(verdicts), cells=tuple(seed_cells), progress=progress, problems=tuple(problems),
                 summary=(line,))
