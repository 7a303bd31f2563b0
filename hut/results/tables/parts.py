"""The parts of HUT beside its relatives (experiment ``parts``): rows × Table 1's tasks.

Rows (the sweep of ``configs/experiment/parts.yaml``): HUT's ladder, each rung a subset of its input
scale a, output scale s and shift t on q and v (s; s, t; a, s; a, s, t; HUT itself), then HiRA, DoRA
and LoRA. Columns: Table 1's GLUE tasks (RoBERTa-large), cells as Table 1's (task metric × 100, mean
± std over seeds), with an average. Below them the paper's Table 1 rows as printed, and ours − paper
for the HUT and LoRA rows (they are Table 1's configs). What it answers: docs/parts.md.
"""
from __future__ import annotations

from hut.results.labels import task_label
from hut.results.layout import layout
from hut.results.tables.base import Built, Inputs
from hut.results.tables.method_table import Column, build_method_table
from hut.results.tables.table1 import GLUE_DIGITS, GLUE_SCALE, glue_tasks

CAPTION = ("Parts of HUT and its relatives on GLUE dev, experiment `{experiment}` ({n} finished runs): the "
           "record's best epoch, task metric × 100 as in Table 1. Rows: s = output scale γ, t = shift β, a = input "
           "scale, each on q and v with HUT's Table 6 settings; HUT, HiRA (HUT's settings), DoRA and LoRA (LoRA's "
           "Table 6 settings). #Params: trainable parameters without the classification head.")


def build_parts(inp: Inputs) -> Built:
    lay = layout("parts", inp.experiments.get("parts", "parts"))
    columns = [Column(t, task_label(t), GLUE_SCALE, GLUE_DIGITS, lambda r, t=t: r.task == t, "score", t)
               for t in glue_tasks(inp, lay)]
    return build_method_table(inp, lay, "parts", "Parts of HUT and its relatives: GLUE ({models})", CAPTION,
                              columns, avg=True, paper_key="table1")
