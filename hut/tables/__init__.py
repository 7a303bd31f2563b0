"""The paper's tables, one module each, in one registry (``TABLES``), refusing duplicate names.

============  ==========================  =============================================================
table         module                      rows x columns
============  ==========================  =============================================================
table1        ``table1_glue``             methods x GLUE tasks (+ Avg.), ours / the paper's / ours − paper
table2        ``table2_flops``            the paper's FLOPs rows beside our counts; every method measured
table3        ``table3_e2e``              methods x the five E2E metrics, ours / paper / ours − paper
table4        ``grids``                   tasks x (targets, r) cells (HUT)
table5        ``grids``                   (task, targets) x r (HUT)
parts         ``parts``                   HUT's parts, HiRA, DoRA, LoRA x Table 1's tasks (experiment parts)
cost          ``cost``                    per run: score, wall time, parameters (Tables 1 and 3's runs)
figure3       ``figure3``                 GLUE average vs FLOPs, the paper's and ours (two panels)
figure4       ``figure4``                 SQuAD EM/F1 per method beside a baseline (the mini table); the
                                          figure itself: ``python -m hut.tables.figure4`` (loads the models)
============  ==========================  =============================================================

Shared: ``runs`` (records -> runs and cells), ``layout`` (what a table expects, from
configs/experiment), ``paper`` (the paper's rows), ``labels`` (names from the configs), ``render``
(Markdown, LaTeX, CSV), ``method_rows`` (Tables 1 and 3), ``context`` (what a builder gets),
``wordshade`` (Figure 4's shaded words: matplotlib and HTML).
``docs/DESIGN.md`` maps each paper table to its config, builder and output files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hut.registry import Registry
from hut.tables.context import Context
from hut.tables.render import Table


@dataclass(frozen=True)
class TableSpec:
    key: str
    build: Callable[[Context], Table]


TABLES: Registry[TableSpec] = Registry("table")


def _register() -> None:
    from hut.tables.cost import build_cost
    from hut.tables.figure4 import build_figure4_table
    from hut.tables.grids import build_table4, build_table5
    from hut.tables.parts import build_parts
    from hut.tables.table1_glue import build_table1
    from hut.tables.table2_flops import build_table2
    from hut.tables.table3_e2e import build_table3

    for spec in (TableSpec("table1", build_table1), TableSpec("table2", build_table2),
                 TableSpec("table3", build_table3), TableSpec("table4", build_table4),
                 TableSpec("table5", build_table5), TableSpec("parts", build_parts), TableSpec("cost", build_cost),
                 TableSpec("figure4", build_figure4_table)):
        TABLES.add(spec.key, spec)


_register()
