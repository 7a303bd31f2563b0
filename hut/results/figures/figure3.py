"""Figure 3: GLUE average against FLOPs, the paper's points and ours, in two panels.

* left, the paper's: each row of its Table 2 at its printed GFLOPs, against that row's Table 1 average;
* right, ours: each Table 1 row with a result on every task (or the tasks all complete rows share),
  at the measured GFLOPs of one training step of its config (``hut.flops``), against our average.

The two x axes are different quantities (the paper counts forming the updated weights, Eq. 10-11; the
measurement counts a whole forward/backward step), hence two panels, never one axis.
"""
from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import Mapping

from hut import flops
from hut.results import paper as paper_figures
from hut.results.figures.costs import measure_run, span_note
from hut.results.files import write_bytes
from hut.results.labels import task_label
from hut.results.tables.base import Built, Inputs


def _tasks_all_rows_share(averages: Mapping, tasks: list[str]) -> list[str]:
    have = [frozenset(t for t, c in row.cells.items() if c.values) for row in averages.values()]
    have = [h for h in have if h]
    if not have or any(h >= set(tasks) for h in have):
        return list(tasks)
    best = max(have, key=lambda h: (len(h), sum(1 for o in have if o >= h),
                                    [-tasks.index(t) for t in sorted(h, key=tasks.index)]))
    return [t for t in tasks if t in best]


def build_figure3(inp: Inputs, table1: Built, out_dir: Path) -> tuple[list[Path], str]:
    """Figure 3 from Table 1's rows (``table1.rows``, ``table1.columns``): (paths written, summary line)."""
    # matplotlib is imported only when a figure is drawn: it is slow to import and the tables need none of it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    averages, tasks = table1.rows, list(table1.columns)
    use = _tasks_all_rows_share(averages, tasks)
    partial = list(use) != list(tasks)
    ours: list[tuple[float, float, str]] = []
    skipped: list[str] = []
    by_row = {}
    for r in sorted(inp.runs, key=lambda r: (r.seed, r.path)):
        if r.experiment == inp.experiments["table1"] and r.status == "success":
            by_row.setdefault(r.row, r)
    for k, row in averages.items():
        means = [row.cells[t].mean(100.0) for t in use if t in row.cells]
        if len(means) != len(use) or any(m is None for m in means) or k not in by_row:
            continue
        if not inp.measure_flops:
            skipped.append("FLOPs not measured (flops=false)")
            break
        run = by_row[k]
        x, why = measure_run(run, "flops")
        if x is None:
            skipped.append(f"{run.method}: {why}")
            continue
        ours.append((x, statistics.fmean(means), row.label or run.method))
    t1 = {(r["method"], paper_figures.millions(r["params"])): r for r in inp.paper_rows("table1")}
    cols = list((inp.published.get("table1") or {}).get("columns") or [])
    theirs = []
    for r in inp.paper_rows("table2"):
        row = t1.get((r["method"], paper_figures.millions(r["params"])))
        if row is not None and "avg" in cols and row["mean"][cols.index("avg")] is not None:
            theirs.append((float(r["gflops"]), float(row["mean"][cols.index("avg")]), paper_figures.paper_label(r)))

    fig = Figure(figsize=(10.0, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for ax, pts, color, xlabel, title in (
        (left, theirs, "tab:red", "GFLOPs (the paper's Table 2, Eq. 10–11 for HUT and LoRA)",
         f"The paper ({paper_figures.CITATION}): Table 1 average"),
        (right, ours, "tab:blue", f"GFLOPs per training step, measured (forward + backward, {flops.BATCH} × "
         f"{flops.SEQ_LEN} tokens)", f"Ours (experiment {inp.experiments['table1']})"),
    ):
        narrow = span_note([p[0] for p in pts], " GFLOPs")
        if narrow:  # a sub-percent axis: matplotlib would spread it over the panel; say how small it is
            xlabel += f"\nnote: the x values are {narrow}"
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=40, color=color, zorder=3)
            for i, (x, y, lab) in enumerate(sorted(pts)):
                ax.annotate(lab, (x, y), textcoords="offset points", xytext=(6, 6 if i % 2 == 0 else -12), fontsize=7)
        else:
            ax.text(0.5, 0.5, "no complete GLUE rows yet\n(every task of a row needs a finished run)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.15, y=0.15)
    left.set_ylabel("GLUE average (%)", fontsize=8)
    right.set_ylabel(f"GLUE average (%) over {', '.join(task_label(t) for t in use)}" + (" (partial)" if partial else ""),
                     fontsize=8)
    fig.suptitle("Figure 3: GLUE average vs. FLOPs", fontsize=10)
    fig.tight_layout()
    out = Path(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    png, pdf = out / "figure3.png", out / "figure3.pdf"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    write_bytes(png, buf.getvalue())
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    write_bytes(pdf, buf.getvalue())
    return [png, pdf], (f"figure3: {len(ours)} of our points (average over {', '.join(use)}), {len(theirs)} paper "
                        f"points" + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))
