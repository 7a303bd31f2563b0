"""The shared builder of tables whose rows are methods (Table 1, Table 3, the parts table): ours, the
paper's, ours − paper.

A row is (method, variant, model, override variant), named by the ``label`` its config recorded; the
expected rows come from the experiment's sweep (:mod:`hut.results.layout`) and every record of the
experiment adds its own. A column is a GLUE task (Table 1) or an E2E metric (Table 3), described by
a :class:`Column`. Cells are mean ± sample std over seeds (:class:`hut.results.runs.Cell`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from hut.results.judge import stats
from hut.results.judge import protocols
from hut.runs.tuning import SPLIT_LABELS
from hut.results.judge import verdicts as cell_verdicts
from hut.results import paper as paper_figures
from hut.results.labels import method_label, model_label
from hut.results.layout import Layout, RowKey
from hut.results.render.table import NA, Table, fmt_params, num, signed, tex_escape
from hut.results.runs import Cell, Problem, Run, add, dedupe, metric_value, mixed_problems
from hut.results.tables.base import Built, Inputs, RowResult, SeedCell
from hut.results.tables.progress import summarise


@dataclass(frozen=True)
class Column:
    key: str  # task (Table 1) or metric (Table 3)
    label: str  # header
    scale: float
    digits: int
    select: Callable[[Run], bool]  # which runs feed this column
    metric: str  # the record's best.<metric>
    paper: str  # the column name in the published figures


def row_order(key: RowKey, expected: Sequence[RowKey]) -> tuple:
    if key in expected:
        return (0, list(expected).index(key))
    return (1, str(key[0]), str(key[1] or ""), str(key[2] or ""), str(key[3] or ""))


def row_label(key: RowKey, label: str | None, multi_model: bool, tex: bool = False) -> str:
    method, variant, model, overrides = key
    s = method_label(method, label, tex)
    if variant and not label:
        s += f" [{tex_escape(variant) if tex else variant}]"
    if overrides:
        s += f" [{tex_escape(overrides) if tex else overrides}]"
    if multi_model and model:
        s += f" ({tex_escape(model_label(model)) if tex else model_label(model)})"
    return s


def status_notes(label: str, cell: Cell) -> list[str]:
    notes = []
    for s, reason in sorted(cell.failed.items()):
        notes.append(f"† {label}, seed {s}: failed ({reason}).")
    if cell.running:
        notes.append(f"{label}: seed(s) {', '.join(map(str, sorted(cell.running)))} still marked running "
                     f"(in progress or interrupted; not counted).")
    if cell.missing and (cell.values or cell.failed or cell.running):
        notes.append(f"{label}: seed(s) {', '.join(map(str, cell.missing))} missing.")
    if cell.extra:
        notes.append(f"{label}: extra seed(s) {', '.join(map(str, cell.extra))} beyond the expected "
                     f"{len(cell.expected or ())} (included in the mean).")
    if cell.mixed:
        notes.append(f"‡ {label}: its records were made by different configs; not averaged (see the problems below).")
    return notes


def std_note(seeds: tuple[int, ...] | None) -> str:
    n = (f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})" if seeds
         else "all finished seeds")
    return (f"Cells: mean ± sample standard deviation (ddof = 1) over {n}; no ± with a single seed. "
            f"[n/N]: n of the N expected seeds finished; [n=k]: k seeds of a row outside the sweep (an override variant "
            f"or another method: not in the sweep's counts); †: a run failed; ‡: records of different configs.")


def build_method_table(inp: Inputs, lay: Layout, key: str, title: str, caption: str, columns: Sequence[Column],
                       avg: bool, paper_key: str | None = None) -> Built:
    """The table, its verdicts, and per row its average over the columns, cells and label (Figure 3
    and the page read them).

    ``paper_key``: the published table whose rows are printed below ours (default: ``key``; the parts
    table prints Table 1's)."""
    pk = paper_key or key
    problems: list[Problem] = []
    shown = protocols.for_tables(inp.runs, inp.searches, inp.results_dir)  # search points out, tuned rows in
    mine = [r for r in shown if r.experiment == lay.experiment and any(c.select(r) for c in columns)]
    mine = dedupe(mine, lambda r: (r.task, r.row), problems)
    expected = [r.key for r in lay.rows]
    labels: dict[RowKey, str | None] = {r.key: r.label for r in lay.rows}
    for r in mine:
        labels.setdefault(r.row, r.label)
    keys = sorted(set(expected) | {r.row for r in mine}, key=lambda k: row_order(k, expected))
    multi_model = len({k[2] for k in keys if k[2]}) > 1
    # a row outside the sweep (an override variant, a method the sweep lacks) expects no seeds: [n=k]
    cells = {(k, c.key): Cell(expected=lay.seeds if k in expected else None) for k in keys for c in columns}
    for r in mine:
        for c in columns:
            if c.select(r):
                add(cells[(r.row, c.key)], r, metric_value(r, c.metric, problems))
    problems += mixed_problems(cells.values())

    lrs, protocol_notes = _protocol_marks(inp, lay, mine, columns, multi_model, labels)
    header: list[Any] = ["Method", "#Params"] + [c.label for c in columns] + (["Avg."] if avg else [])
    body, notes, csv_rows = [], [], []
    averages: dict[RowKey, RowResult] = {}
    base = {"table": key, "experiment": lay.experiment}
    for k in keys:
        rc = {c.key: cells[(k, c.key)] for c in columns}
        means = [rc[c.key].mean(c.scale) for c in columns]
        row_avg = statistics.fmean(means) if avg and means and all(m is not None for m in means) else None
        averages[k] = RowResult(row_avg, rc, labels.get(k))
        params = [p for cell in rc.values() for p in cell.params]
        lab = (row_label(k, labels.get(k), multi_model), row_label(k, labels.get(k), multi_model, tex=True))
        body.append([lab, fmt_params(params)] + [rc[c.key].text(c.scale, c.digits) + lrs.get((k, c.key), "")
                                                 for c in columns]
                    + ([NA if row_avg is None else f"{row_avg:.{columns[0].digits}f}"] if avg else []))
        for c in columns:
            notes += status_notes(f"{lab[0]} · {c.label}", rc[c.key])
            csv_rows.append({**base, "source": "ours", "model": k[2] or "", "method": k[0], "variant": k[1] or "",
                             "overrides": k[3] or "", "label": lab[0], "column": c.key, "metric": c.metric,
                             "scale": f"{c.scale:g}", "adapter_params": " ".join(map(str, sorted(set(params)))),
                             **rc[c.key].csv(c.scale)})
        if avg:
            csv_rows.append({**base, "source": "ours", "model": k[2] or "", "method": k[0], "variant": k[1] or "",
                             "overrides": k[3] or "", "label": lab[0], "column": "avg", "mean": num(row_avg)})
        if k in expected and not any(cell.values or cell.failed or cell.running for cell in rc.values()):
            notes.append(f"{lab[0]}: no runs yet.")

    judged = _verdicts(inp, lay, pk, keys, cells, averages, columns)
    verdicts = [v for per_row in judged.values() for v in per_row.values()]
    ref, diff = _paper_blocks(inp, lay, pk, keys, cells, averages, columns, avg, csv_rows, base, judged)
    stat = {(v.case.label): v.case.statistic for v in verdicts}
    for row in csv_rows:  # the statistic ours is compared with the paper by (the paper row's)
        if row["source"] == "ours" and row["column"] != "avg":
            col = next(c for c in columns if c.key == row["column"])
            row["statistic"] = stat.get(f"{row['label']} · {col.label}", "")
    n_runs = len([r for r in mine if r.status == "success"])
    cap = [caption.format(experiment=lay.experiment, n=n_runs), std_note(lay.seeds)]
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` under `{inp.results_dir}` yet"
                        + (f" (expected {len(lay.rows)} rows × "
                           + (f"{len(columns)} tasks × " if key == "table1" else "")
                           + f"{len(lay.seeds)} seeds)." if lay.rows and lay.seeds else "."))
    notes += protocol_notes
    notes += inp.problem_notes(lay.experiment, problems)
    notes += cell_verdicts.table_notes(verdicts)
    notes += paper_figures.anomaly_notes(pk, inp.paper_rows(pk))
    if not diff:
        notes.append(f"Ours − paper: no row of ours reproduces a paper row on the paper's model "
                     f"({model_label(paper_figures.PAPER_MODEL[pk])}) in experiment `{lay.experiment}`.")
    blocks = [(None, body), (paper_figures.block_title(pk), ref)]
    blocks += [(paper_figures.differences_title(pk), diff)] if diff else []
    fields = ["table", "source", "experiment", "model", "method", "variant", "overrides", "label", "column", "metric",
              "scale", "mean", "std", "n", "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds",
              "extra_seeds", "adapter_params", "printed", "values", "median", "statistic", "verdict", "tolerance",
              "p_equivalence", "p_difference", "seeds_needed"]
    models = (", ".join(model_label(m) for m in sorted({k[2] for k in keys if k[2]}))
              or model_label(paper_figures.PAPER_MODEL[pk]))
    units = {(k, t): (row_label(k, labels.get(k), multi_model), t) for k in expected for t in lay.tasks}

    def outside(r: Run) -> tuple[str, str | None]:
        base = r.row[:3] + (None,)
        return (row_label(r.row, labels.get(r.row), multi_model),
                row_label(base, labels.get(base), multi_model) if base in expected and base != r.row else None)

    progress, line = summarise(key, lay, mine, units, lambda r: (r.row, r.task), outside)
    table = Table(key, title.format(models=models), cap, header, blocks, notes, fields, csv_rows)
    seed_cells = _seed_cells(inp, lay, key, pk, keys, cells, averages, columns, judged, multi_model)
    return Built(table, tuple(verdicts), averages, tuple(c.key for c in columns), seed_cells, progress,
                 tuple(problems), (line,))


def _seed_cells(inp: Inputs, lay: Layout, key: str, pk: str, keys, cells, averages, columns, judged,
                multi_model: bool) -> tuple[SeedCell, ...]:
    """Every cell with seeds or a paper figure, as the page plots it (printed units)."""
    out = []
    for k in keys:
        for c in columns:
            cell = cells[(k, c.key)]
            v = judged.get(k, {}).get(c.key)
            ref = v.case.ref if v is not None else None
            if not (cell.values or cell.failed or ref is not None):
                continue
            out.append(SeedCell(key, lay.experiment, c.key, c.label, row_label(k, averages[k].label, multi_model), k[0],
                                {} if cell.mixed else {s: x * c.scale for s, x in sorted(cell.values.items())},
                                cell.expected, dict(cell.failed), ref.value if ref is not None else None,
                                ref.std if ref is not None else None, v.kind if v is not None else "",
                                v.case.statistic if v is not None else "mean"))
    return tuple(out)


def _paper_blocks(inp: Inputs, lay: Layout, key: str, keys, cells, averages, columns, avg, csv_rows,
                  base, judged) -> tuple[list, list]:
    prows = inp.paper_rows(key)
    pub_cols = list((inp.published.get(key) or {}).get("columns") or [])
    ref: list[list[Any]] = []
    for r in prows:
        values = []
        for c in columns:
            j = pub_cols.index(c.paper) if c.paper in pub_cols else None
            mean = r["mean"][j] if j is not None else None
            std = (r.get("std") or [None] * len(pub_cols))[j] if j is not None else None
            values.append(paper_figures.printed(mean, std, c.digits))
            if mean is not None:
                csv_rows.append({**base, "source": "paper", "method": r["method"], "label": paper_figures.paper_label(r),
                                 "column": c.key, "metric": c.metric, "scale": f"{c.scale:g}", "mean": num(float(mean)),
                                 "std": num(std if std is None else float(std)), "printed": str(r.get("params")),
                                 "statistic": cell_verdicts.reported(key, r).statistic})
        if avg:
            j = pub_cols.index("avg") if "avg" in pub_cols else None
            values.append(paper_figures.printed(r["mean"][j] if j is not None else None, None, columns[0].digits))
        ref.append([paper_figures.row_label(paper_figures.paper_label(r), bool(r.get("published_elsewhere"))),
                    str(r.get("params") or NA)]
                   + values)
    diff: list[list[Any]] = []
    for k in keys:
        pr = paper_figures.match(prows, lay.paper_rows.get(k) or _recorded_paper_row(inp, lay, k))
        if pr is None or k[2] != paper_figures.PAPER_MODEL[key] or k[3]:
            continue
        avg_k, label = averages[k].average, averages[k].label
        cells_d = []
        for c in columns:
            v = judged.get(k, {}).get(c.key)
            d = v.diff if v is not None else None  # ours − paper in the paper row's statistic (mean or median)
            marker = f" {v.marker}" if v is not None and v.marker and d is not None else ""
            cells_d.append(signed(d, c.digits) + marker)
            if d is not None:
                csv_rows.append({**base, "source": "ours-paper", "model": k[2], "method": k[0], "variant": k[1] or "",
                                 "label": label or "", "column": c.key, "metric": c.metric, "scale": f"{c.scale:g}",
                                 "mean": num(d), **verdict_fields(v)})
        if avg:
            j = pub_cols.index("avg") if "avg" in pub_cols else None
            d = avg_k - float(pr["mean"][j]) if avg_k is not None and j is not None else None
            cells_d.append(signed(d, columns[0].digits))
        if all(v == NA for v in cells_d):
            continue
        name = row_label(k, label, False)
        diff.append([(f"{name}: ours − paper", f"{row_label(k, label, False, tex=True)}: ours $-$ paper"), NA] + cells_d)
    return ref, diff


def _verdicts(inp: Inputs, lay: Layout, key: str, keys, cells, averages, columns) -> dict:
    """Row -> column -> :class:`hut.results.judge.verdicts.Verdict` for every row of ours that stands for a paper row.

    A row stands for the paper row its config names (``paper_row``); a row that names none (the demo's)
    stands for the paper's only row of its method, if there is one, and is *not comparable*. So is a
    row on another model than the paper's or with command-line overrides (another setting).
    """
    prows = inp.paper_rows(key)
    pub_cols = list((inp.published.get(key) or {}).get("columns") or [])
    out: dict = {}
    cases, where = [], []
    for k in keys:
        named = lay.paper_rows.get(k) or _recorded_paper_row(inp, lay, k)
        pr = paper_figures.match(prows, named)
        if pr is None and not named:
            same = [r for r in prows if r.get("method") == k[0]]
            pr = same[0] if len(same) == 1 else None
        if pr is None:
            continue
        reasons = []
        if not named:
            reasons.append("its config names no paper row: another setting")
        if k[2] != paper_figures.PAPER_MODEL[key]:
            reasons.append(f"{model_label(k[2])}, not {model_label(paper_figures.PAPER_MODEL[key])}")
        if k[3]:
            reasons.append(f"overrides {k[3]}")
        rep = cell_verdicts.reported(key, pr)
        label = averages[k].label
        for c in columns:
            j = pub_cols.index(c.paper) if c.paper in pub_cols else None
            if j is None or pr["mean"][j] is None:
                continue
            std = (pr.get("std") or [None] * len(pub_cols))[j]
            ref = stats.Reference(float(pr["mean"][j]), None if std is None else float(std), rep.seeds)
            values = tuple(v * c.scale for v in cells[(k, c.key)].values.values()) if not cells[(k, c.key)].mixed else ()
            cases.append(cell_verdicts.CellCase(f"{row_label(k, label, False)} · {c.label}", values, ref,
                                                cell_verdicts.tolerance(c.metric),
                                    "median" if rep.statistic == "median" else "mean", not reasons,
                                    "; ".join(reasons)))
            where.append((k, c.key))
    for (k, col), v in zip(where, cell_verdicts.judge(cases)):
        out.setdefault(k, {})[col] = v
    return out


def verdict_fields(v) -> dict[str, str]:
    """The csv columns of a verdict."""
    if v is None:
        return {}
    return {"statistic": v.case.statistic, "verdict": v.kind, "tolerance": f"{v.case.tol:g}",
            "p_equivalence": num(v.p_equivalence), "p_difference": num(v.p_difference),
            "seeds_needed": "" if v.seeds_needed is None else str(v.seeds_needed)}


def _recorded_paper_row(inp: Inputs, lay: Layout, k: RowKey) -> Mapping[str, Any] | None:
    """The paper row a record names (for rows the layout does not know, e.g. older records)."""
    for r in inp.runs:
        if r.experiment == lay.experiment and r.row == k and r.paper_row:
            return r.paper_row
    return None


def _protocol_marks(inp: Inputs, lay: Layout, mine: Sequence[Run], columns: Sequence[Column], multi_model: bool,
                    labels: Mapping[RowKey, str | None]) -> tuple[dict, list[str]]:
    """Where an experiment had a learning-rate search: each tuned cell's learning rate (`` @ lr X``, by
    (row, column)) and notes saying which protocol each row's cells used."""
    searches = [s for s in inp.searches if s.experiment == lay.experiment]
    if not searches:
        return {}, []
    marks: dict = {}
    for r in mine:
        if (r.overrides or "").startswith(protocols.TUNED) and (v := protocols.value_of(r)) is not None:
            for c in columns:
                if c.select(r):
                    marks[(r.row, c.key)] = f" @ lr {v:g}"
    tuned_rows = sorted({r.row for r in mine if (r.overrides or "").startswith(protocols.TUNED)}, key=str)
    configured = sorted({r.row for r in mine
                         if r.row not in tuned_rows and f"{protocols.LR_KEY}=" not in (r.overrides or "")}, key=str)
    split = {s.selection for s in searches}
    points = len(protocols.searched([r for r in inp.runs if r.experiment == lay.experiment], searches))
    names = {k: row_label(k, labels.get(k), multi_model) for k in (*configured, *tuned_rows)}
    notes = [f"Protocols: rows {', '.join(names[k] for k in configured) or '–'} "
             f"ran as configured (each row's own learning rate); rows "
             f"{', '.join(names[k] for k in tuned_rows) or '–'} are tuned: each cell at "
             f"the learning rate (@ lr) its search chose on "
             f"{' / '.join(SPLIT_LABELS.get(x, x) for x in sorted(split))} "
             f"(never the reported data), "
             f"its final seeds (protocol {', '.join(sorted({s.protocol for s in searches}))}; the report's "
             f"'Learning-rate search')."]
    if points:
        notes.append(f"{points} other run(s) of the search (its grid points) are not rows here: the learning-rate "
                     f"figure (figures/lr_sensitivity.png) and the report show them.")
    return marks, notes
