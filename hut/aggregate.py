"""Tables, figures, the report and the results page from finished runs: ``python -m hut.aggregate [key=value ...]``.

    python -m hut.aggregate                                   # results/runs -> results/tables, results/figures
    python -m hut.aggregate results_dir=R out_dir=O           # other folders
    python -m hut.aggregate experiment=demo results_dir=results/demo/runs out_dir=results/demo
    python -m hut.aggregate experiment=table1_extended tables=[1]
    python -m hut.aggregate experiments.table4=my_ablation tables=[4]

Keys (``configs/cli/aggregate.yaml``, composed like every entry point's arguments): ``results_dir``,
``out_dir``, ``experiment`` (read experiment X's records for the tables X's files feed; Figure 4
when X feeds it),
``experiments.tableN``, ``tables``, ``figure``, ``flops``, ``flops_model``, ``paper_file``, ``report``,
``page``, ``ship_records``.

This module is the command only: its options, then :func:`hut.results.aggregate.build` writes each
table asked for (``<out_dir>/tables/<key>.{md,tex,csv}``), Figure 3, the reproduction report
``<out_dir>/report.{md,tex,csv}``, the records it read (``<out_dir>/records/``) and the static
results page ``<out_dir>/index.html``, and reports what is missing. The console counts *runs* against each sweep's
cells × its own seeds (Table 1: 270, Table 3: 30, Table 4: 80, Table 5: 150); override variants
and rows outside the sweep are counted apart. A ``results_dir`` that does not exist is an error.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence

from hut.config import experiments as ex
from hut.config import cli_options
from hut.results.aggregate import build

TABLE_KEYS = ("table1", "table2", "table3", "table4", "table5", "parts")  # what tables= may name
USAGE = ("usage: python -m hut.aggregate [results_dir=results/runs] [out_dir=results] [experiment=E] "
         "[experiments.tableN=E] [tables=[1,2,3,4,5,parts]] [figure=true|false] [flops=true|false] "
         "[flops_model=roberta_large] [paper_file=<published-figures yaml>] [report=true|false] [page=true|false] "
         "[ship_records=true|false]")


def options(argv: Sequence[str]) -> dict[str, Any]:
    """The composed ``configs/cli/aggregate.yaml`` with ``argv``; a bad key or value is one clear line."""
    o = cli_options(argv, "aggregate", "hut.aggregate", USAGE)
    for key in ("figure", "flops", "report", "page", "ship_records"):
        if not isinstance(o[key], bool):
            raise SystemExit(f"hut.aggregate: {key}= takes true or false (got {o[key]!r})\n{USAGE}")
    exps = dict(o["experiments"])
    tables = o["tables"]
    if o["experiment"]:
        files = ex.experiments_for(o["experiment"])
        fed = sorted({ex.meta(f)["table"] for f in files if ex.meta(f)["table"]})
        if not fed:
            raise SystemExit(f"hut.aggregate: no experiment file has experiment_name '{o['experiment']}'\n{USAGE}")
        exps.update({t: o["experiment"] for t in fed})
        # the tables it feeds; a figure an experiment feeds (figure4) is drawn when its runs are there
        tables = tables if tables is not None else [t for t in fed if t in TABLE_KEYS]
    tables = [1, 2, 3, 4, 5] if tables is None else tables
    # a table is its number (1-5: the paper's) or its registry key (e.g. parts)
    keys = [f"table{t}" if isinstance(t, int) and not isinstance(t, bool) else str(t) for t in tables]
    bad = [t for t, k in zip(tables, keys) if k not in TABLE_KEYS]
    if bad:
        raise SystemExit(f"hut.aggregate: tables takes numbers 1-5 or {', '.join(TABLE_KEYS[5:])} (got {bad})\n{USAGE}")
    o["experiments"], o["tables"] = exps, keys
    o["argv"] = list(argv)
    return o


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    build(options(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
