"""``python -m hut.plan experiment=E [gpu=rtx3090] [gpus=1] [cluster=false] [results_dir=results/runs] [tune=true]``.

``tune=true`` adds the learning-rate search of ``configs/tune/<E>.yaml`` (``tune=NAME``: another protocol):
its runs and hours beyond the experiment's own (:mod:`hut.plan.search`).

Keys: ``configs/cli/plan.yaml`` (composed like every command's arguments, :func:`hut.config.cli_options`).
"""
from __future__ import annotations

import sys
from typing import Sequence

from hut.config import cli_options
from hut.config.experiments import experiment_file
from hut.plan.estimate import downloads, gpu, plan_lines
from hut.plan.report import render
from hut.plan.search import render as render_search
from hut.plan.search import search_lines

USAGE = ("usage: python -m hut.plan experiment=<table1|table3|table4|table5|...> [gpu=rtx3090|a100|h100] "
         "[gpus=1] [cluster=false] [results_dir=results/runs] [tune=false|true|NAME]")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    o = cli_options(argv, "plan", "hut.plan", USAGE)
    if not isinstance(o["cluster"], bool) or not isinstance(o["gpus"], int) or o["gpus"] < 1:
        raise SystemExit(f"hut.plan: cluster= takes true or false and gpus= a positive integer\n{USAGE}")
    if o["experiment"] in (None, "???"):
        raise SystemExit(f"hut.plan: experiment= is required (an experiment of configs/experiment, e.g. table1)\n{USAGE}")
    try:
        experiment_file(str(o["experiment"]))
        g = gpu(str(o["gpu"]))
        print(f"[plan] composing every cell of experiment {o['experiment']} and counting each method's FLOPs "
              f"and activations (cached by config after the first call) ...", flush=True)
        lines = plan_lines(str(o["experiment"]), g["kind"], str(o["results_dir"]))
    except ValueError as e:  # unknown experiment or GPU kind: one line naming the known ones
        raise SystemExit(f"hut.plan: {e}\n{USAGE}") from None
    totals = render(str(o["experiment"]), g, lines, downloads(str(o["experiment"])), str(o["results_dir"]),
                    o["gpus"], o["cluster"])
    if o["tune"] not in (False, None, "false"):
        name = str(o["experiment"]) if o["tune"] is True else str(o["tune"])
        try:
            p, searched = search_lines(str(o["experiment"]), name, g)
        except ValueError as e:
            raise SystemExit(f"hut.plan: {e}") from None
        print()
        for line in render_search(str(o["experiment"]), p, searched, g["kind"], totals["hours_total"]):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
