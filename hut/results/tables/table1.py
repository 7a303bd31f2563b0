"""Table 1: GLUE dev results (RoBERTa-large in the paper), methods × tasks, with the paper's rows.

Columns: every task of the experiment's sweep (and of its records) whose kind is classification or
regression, in the sweep's order; the cell is the record's ``best.score`` (the task's paper metric:
CoLA Matthews, STS-B Pearson, the others accuracy) × 100. A new GLUE-like task needs nothing here.
"""
from __future__ import annotations

from hut.results.labels import task_kind, task_label
from hut.results.layout import layout
from hut.results.tables.base import Built, Inputs
from hut.results.tables.method_table import Column, build_method_table

GLUE_SCALE, GLUE_DIGITS = 100.0, 1
CAPTION = ("GLUE dev results, experiment `{experiment}` ({n} finished runs): the record's best epoch, task metric "
           "× 100 (CoLA: Matthews corr.; STS-B: Pearson corr.; the others: accuracy). #Params: trainable parameters "
           "without the classification head (the record's `params.adapter`). Avg.: mean of the task means, shown "
           "when every task has a result.")


def glue_tasks(inp: Inputs, lay) -> list[str]:
    tasks = list(lay.tasks)
    for r in inp.runs:
        if r.experiment == lay.experiment and r.task not in tasks and task_kind(r.task) in ("classification", "regression"):
            tasks.append(r.task)
    return [t for t in tasks if task_kind(t) in ("classification", "regression")]


def build_table1(inp: Inputs) -> Built:
    """Table 1; its rows (average, cells, label) and tasks are returned for Figure 3 and the page."""
    lay = layout("table1", inp.experiments["table1"])
    columns = [Column(t, task_label(t), GLUE_SCALE, GLUE_DIGITS, lambda r, t=t: r.task == t, "score", t)
               for t in glue_tasks(inp, lay)]
    title = "Table 1: GLUE ({models})" if lay.experiment != "demo" else "Table 1 (demo): GLUE subsets ({models})"
    return build_method_table(inp, lay, "table1", title, CAPTION, columns, avg=True)
