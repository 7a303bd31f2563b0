"""``python -m hut.tune experiment=E [tune=NAME] [tune.KEY=VALUE ...] [workers=1] [print_only=false] [run overrides]``.

Runs experiment ``E``'s learning-rate search by protocol ``configs/tune/<NAME>.yaml`` (default: ``E``'s
own), chooses each cell's value, writes it beside the runs, and runs the final seeds at it. First it
prints the ``python -m hut.train -m`` commands that make the same runs (for Hydra's launchers on a
cluster; ``print_only=true`` stops there). ``tune.grid=[...]`` (any key of the protocol) overrides the
protocol; ``task=stsb`` (a key the experiment sweeps) keeps only those cells; any other ``key=value`` is
an override of every run (``trainer.max_steps=2``). ``workers=N`` shares the runs among N processes of
one thread each; two commands started side by side share them through the run locks.
"""
from __future__ import annotations

import sys
import time
from typing import Sequence

from hut.config import split_own
from hut.config.experiments import experiment_file
from hut.runs.tuning import SPLIT_LABELS
from hut.tune import protocol as proto
from hut.tune.jobs import Workers, run_jobs
from hut.tune.search import SearchError, final_jobs, hydra_commands, plan, search_jobs, select

USAGE = ("usage: python -m hut.tune experiment=E [tune=NAME] [tune.grid=[...]] [workers=1] [print_only=false] "
         "[task=... and other run overrides]")
OWN = ("experiment", "tune", "workers", "print_only")


def parse(argv: Sequence[str]) -> tuple[dict, list[str], list[str]]:
    """(this command's own arguments, the protocol's overrides, the runs' overrides)."""
    own, rest = split_own(argv, OWN, "hut.tune", USAGE)
    if not own.get("experiment"):
        raise SystemExit(f"hut.tune: experiment= is required (an experiment of configs/experiment)\n{USAGE}")
    try:
        experiment_file(own["experiment"])
    except ValueError as e:  # unknown experiment: the known ones named
        raise SystemExit(f"hut.tune: {e}") from None
    workers = own.get("workers", "1")
    if not workers.isdigit() or int(workers) < 1 or own.get("print_only", "false") not in ("true", "false"):
        raise SystemExit(f"hut.tune: workers= takes a positive integer and print_only= true or false\n{USAGE}")
    workers = int(workers)
    opts = {"experiment": own["experiment"], "tune": own.get("tune", own["experiment"]), "workers": workers,
            "print_only": own.get("print_only") == "true"}
    tune = [a[len("tune."):] for a in rest if a.startswith("tune.")]
    return opts, tune, [a for a in rest if not a.startswith("tune.")]


def main(argv: Sequence[str] | None = None) -> int:
    o, tune, extra = parse(list(sys.argv[1:] if argv is None else argv))
    t0 = time.time()
    try:
        p = proto.load(o["tune"], tune)
        cells = plan(p, o["experiment"], extra)
    except ValueError as e:
        raise SystemExit(f"hut.tune: {e}") from None
    print(f"[tune] experiment {o['experiment']}, protocol {p.name}: {len(cells)} cell(s) × {len(p.grid)} values of "
          f"{p.key} × {len(p.search_seeds)} search seed(s), chosen on {SPLIT_LABELS[p.selection]}. The same runs "
          f"through Hydra:")
    for cmd in hydra_commands(cells, p):
        print(f"  {cmd}")
    if o["print_only"]:
        print("[tune] print_only=true: nothing run (once those runs finished, python -m hut.tune ... chooses and "
              "prints the final runs' commands)")
        return 0
    jobs = search_jobs(cells, p)
    with Workers(o["workers"]) as pool:
        records = dict(zip(jobs, run_jobs(jobs, pool, prefix="search")))
        try:
            chosen = select(cells, p, records)
        except (SearchError, ValueError) as e:
            raise SystemExit(f"hut.tune: {e}") from None
        print("[tune] the final runs through Hydra:")
        for cmd in hydra_commands([], p, chosen):
            print(f"  {cmd}")
        finals = [j for j in final_jobs(chosen, p) if j not in records]  # a chosen point's search seeds ran
        run_jobs(finals, pool, prefix="final")
    edges = sum(s.choice.at_edge is not None for s in chosen)
    print(f"[tune] done in {time.time() - t0:.0f}s: {len(set(jobs))} search runs, {len(set(finals))} final runs; "
          f"{len(chosen)} selection file(s)" + (f"; {edges} chosen at the grid's edge (above)" if edges else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
