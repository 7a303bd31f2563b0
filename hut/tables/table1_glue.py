"""Table 1: GLUE dev results (RoBERTa-large in the paper), methods × tasks, with the paper's rows.

Columns: every task of the experiment's sweep (and of its records) whose kind is classification or
regression, in the sweep's order; the cell is the record's ``best.score`` (the task's paper metric:
CoLA Matthews, STS-B Pearson, the others accuracy) × 100. A new GLUE-like task needs nothing here.
"""
from __future__ import annotations

from hut.tables.context import Context
from hut.tables.labels import task_kind, task_label
from hut.tables.layout import layout
from hut.tables.method_rows import Column, build

GLUE_SCALE, GLUE_DIGITS = 100.0, 1
CAPTION = ("GLUE dev results, experiment `{experiment}` ({n} finished runs): the record's best epoch, task metric "
           "× 100 (CoLA: Matthews corr.; STS-B: Pearson corr.; the others: accuracy). #Params: trainable parameters "
           "without the classification head (the record's `params.adapter`). Avg.: mean of the task means, shown "
           "when every task has a result.")


def glue_tasks(ctx: Context, lay) -> list[str]:
    tasks = list(lay.tasks)
    for r in ctx.runs:
        if r.experiment == lay.experiment and r.task not in tasks and task_kind(r.task) in ("classification", "regression"):
            tasks.append(r.task)
    return [t for t in tasks if task_kind(t) in ("classification", "regression")]


def build_table1(ctx: Context):
    """Table 1; its rows' averages and cells stay on ``ctx.glue_rows`` for Figure 3."""
    lay = layout("table1", ctx.experiments["table1"])
    columns = [Column(t, task_label(t), GLUE_SCALE, GLUE_DIGITS, lambda r, t=t: r.task == t, "score", t)
               for t in glue_tasks(ctx, lay)]
    title = "Table 1: GLUE ({models})" if lay.experiment != "demo" else "Table 1 (demo): GLUE subsets ({models})"
    table, ctx.glue_rows = build(ctx, lay, "table1", title, CAPTION, columns, avg=True)
    ctx.glue_tasks = [c.key for c in columns]
    return table
