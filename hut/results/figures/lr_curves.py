"""Learning-rate sensitivity: a row's score against its learning rate, where runs of one row differ
in ``trainer.lr`` alone (a learning-rate search, or override variants ``trainer.lr=...``).

:func:`lr_curves` groups runs by experiment, task, method, variant, model and their override variant
*without* its ``trainer.lr``; a group with two or more learning rates is a curve (mean and every seed
per lr, the dev figure every table reports). A search of the group (:mod:`hut.results.judge.protocols`)
adds its chosen learning rate and each grid point's score on its selection split; the row's own
learning rate is marked too (the paper's, where the row names a paper row). The learning rate is
read from each record's resolved config, never from its path.

:func:`draw_lr_figure` draws them (the figure Lee et al., arXiv 2602.04998, draw): per task, score
against learning rate on a log axis, one line per method with its per-seed points, the chosen
learning rate (star) and the row's own (square); dashed: the score on the selection split.
``<out_dir>/figures/lr_sensitivity.{png,pdf}``.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Sequence

from hut.results.judge.protocols import LR_KEY, Search, value_of, without_key
from hut.results.labels import method_label, task_label, task_metric
from hut.results.figures.wordshade import save
from hut.results.runs import Run

FIGURE = "lr_sensitivity"


def lr_curves(runs: Sequence[Run], experiments: Sequence[str], searches: Sequence[Search] = ()) -> list[dict]:
    groups: dict[tuple, dict[float, dict[int, float]]] = {}
    labels: dict[tuple, str] = {}
    own: dict[tuple, tuple[float, bool]] = {}  # the row's own lr, and whether it is a paper row's
    for r in runs:
        if r.experiment not in experiments or r.status != "success":
            continue
        lr = value_of(r, LR_KEY)
        metric = task_metric(r.task)[0]
        value = r.best.get(metric)
        if lr is None or not isinstance(value, (int, float)):
            continue
        key = (r.experiment, r.task, r.method, r.variant, r.model, without_key(r.overrides))
        groups.setdefault(key, {}).setdefault(lr, {})[r.seed] = 100.0 * float(value)
        labels.setdefault(key, method_label(r.method, r.label) + (f" [{key[5]}]" if key[5] else ""))
        if f"{LR_KEY}=" not in (r.overrides or ""):
            own[key] = (lr, bool(r.paper_row))
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        by_lr = groups[key]
        if len(by_lr) < 2:
            continue
        search = next((s for s in searches if (s.experiment, s.task, s.method, s.variant, s.model, s.other) == key),
                      None)
        out.append({"experiment": key[0], "task": key[1], "task_label": task_label(key[1]), "method": key[2],
                    "model": key[4], "label": labels[key], "metric": task_metric(key[1])[1], "overrides": key[5],
                    "points": [{"lr": lr, "mean": statistics.fmean(v.values()),
                                "seeds": {str(s): x for s, x in sorted(v.items())}} for lr, v in sorted(by_lr.items())],
                    "own": own[key][0] if key in own else None, "own_is_paper": key in own and own[key][1],
                    "chosen": search.chosen if search else None, "chosen_on": search.selection if search else None,
                    "selection": [[float(p["value"]), 100.0 * p["mean"]] for p in search.points
                                  if p.get("mean") is not None] if search else []})
    return out


def at(curve: dict, lr: float | None) -> float | None:
    """The curve's mean at ``lr`` (None if it has no point there)."""
    return next((p["mean"] for p in curve["points"] if lr is not None and math.isclose(p["lr"], lr)), None)


def draw_lr_figure(curves: Sequence[dict], out_dir: Path) -> list[Path]:
    """``figures/lr_sensitivity.{png,pdf}``: one panel per (experiment, task); none without curves."""
    if not curves:
        return []
    # matplotlib is imported only when a figure is drawn: it is slow to import and the tables need none of it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels: dict[tuple, list[dict]] = {}
    for c in curves:
        panels.setdefault((c["experiment"], c["task_label"], c["metric"]), []).append(c)
    fig = Figure(figsize=(5.0 * len(panels), 4.6), dpi=100)
    FigureCanvasAgg(fig)
    colors: dict[str, str] = {}
    for i, ((exp, task, metric), cs) in enumerate(panels.items(), 1):
        ax = fig.add_subplot(1, len(panels), i)
        shared = {c["overrides"] for c in cs}
        for c in cs:
            name = c["label"] if len(shared) > 1 else method_label(c["method"])  # the overrides go in the title
            col = colors.setdefault(name, f"C{len(colors) % 10}")
            ax.plot([p["lr"] for p in c["points"]], [p["mean"] for p in c["points"]], "-", color=col, lw=1.5,
                    label=name, zorder=3)
            seeds = [(p["lr"], v) for p in c["points"] for v in p["seeds"].values()]
            ax.scatter([s[0] for s in seeds], [s[1] for s in seeds], s=12, color=col, alpha=0.4, zorder=2)
            if c["selection"]:
                ax.plot([p[0] for p in c["selection"]], [p[1] for p in c["selection"]], "--", color=col, lw=0.9,
                        alpha=0.8)
            if (y := at(c, c["chosen"])) is not None:
                ax.scatter([c["chosen"]], [y], marker="*", s=170, color=col, edgecolor="black", lw=0.6, zorder=4)
            if (y := at(c, c["own"])) is not None:
                ax.scatter([c["own"]], [y], marker="s", s=60, facecolor="none", edgecolor=col, lw=1.4, zorder=4)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)", fontsize=8)
        ax.set_ylabel(f"{metric} × 100", fontsize=8)
        only = next(iter(shared)) if len(shared) == 1 else ""
        ax.set_title(f"{task} (experiment {exp})" + (f"\n[{only}]" if only else ""), fontsize=8)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Learning-rate sensitivity on dev (best epoch): line = mean over seeds, dots = seeds; dashed = the "
                 "split the search chose on;\n★ = the learning rate it chose, □ = the row's own (the paper's for a "
                 "paper row)", fontsize=8)
    fig.tight_layout()
    out = Path(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    return save(fig, out / FIGURE)
