"""What a learning-rate search adds to an experiment's plan (``python -m hut.plan experiment=E tune=true``).

Per cell of the experiment, the search of protocol ``configs/tune/<name>.yaml`` (:mod:`hut.tune`) runs
its grid × search seeds and then the final seeds at the chosen value. Counted beyond the experiment's
own runs (what ``python -m hut.tune`` would run after ``python -m hut.train -m experiment=E``):

* **search runs**: grid points × search seeds, less those at the row's own value on one of the
  experiment's seeds (they *are* the experiment's runs);
* **final runs, at most**: the final seeds that are not search seeds (the chosen point ran those);
  which value wins is not known before the search: should it be the row's own value, the
  experiment's seeds among them are its runs already, so this is the most the choice can add.

Hours: :func:`hut.plan.hours.run_time` of each grid point's own composed config × its runs; the final
runs at the longest point's time (an upper bound). A point it cannot estimate keeps the total unknown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from omegaconf import OmegaConf

from hut.config import compose
from hut.config import experiments as ex
from hut.plan import hours as run_hours
from hut.plan.report import hours as fmt_hours
from hut.results.render.formats import simple, to_text
from hut.runs.tuning import SPLIT_LABELS
from hut.tune import protocol as proto
from hut.tune.search import CellSearch, final_seeds, plan


@dataclass(frozen=True)
class SearchLine:
    cell: str
    grid: tuple[float, ...]
    search_runs: int  # beyond the experiment's own
    final_runs: int  # at most, beyond the search's and the experiment's
    hours: float | None  # of those runs (final ones at the longest point's time); None: unknown
    unknown: str | None = None


def _runs(c: CellSearch, p: proto.Protocol) -> tuple[dict[float, int], int]:
    """(search runs per grid value, final runs at most), each beyond the experiment's own runs."""
    own_seeds = set(ex.seeds(c.experiment))
    search = {v: sum(1 for s in p.search_seeds
                     if not (math.isclose(v, c.configured, rel_tol=1e-9) and s in own_seeds)) for v in c.grid}
    return search, len(set(final_seeds(c, p)) - set(p.search_seeds))  # any value but the row's own may win


def search_lines(experiment: str, name: str, g: Mapping) -> tuple[proto.Protocol, list[SearchLine]]:
    p = proto.load(name)
    out = []
    for c in plan(p, experiment):
        search, finals = _runs(c, p)
        times, unknown = {}, None
        for v in c.grid:  # each point's own composed config
            cfg = OmegaConf.to_container(compose(c.overrides(v, p.search_seeds[0])), resolve=True)
            est = run_hours.run_time(cfg, g)
            if isinstance(est, run_hours.Unknown):
                unknown = est.reason
                break
            times[v] = est.hours
        hours = None if unknown else sum(times[v] * n for v, n in search.items()) + max(times.values()) * finals
        out.append(SearchLine(c.name, c.grid, sum(search.values()), finals, hours, unknown))
    return p, out


def render(experiment: str, p: proto.Protocol, lines: Sequence[SearchLine], kind: str,
           experiment_hours: float | None) -> list[str]:
    """The search's table and totals, with the experiment's own hours beside them."""
    rows = [[ln.cell, " ".join(f"{v:g}" for v in ln.grid), str(ln.search_runs), str(ln.final_runs),
             fmt_hours(ln.hours) if ln.unknown is None else f"unknown: {ln.unknown}"] for ln in lines]
    out = [f"search (est.), protocol {p.name} (configs/tune/{p.name}.yaml): {len(p.grid)} values of {p.key} × "
           f"{len(p.search_seeds)} search seed(s) per cell, chosen on {SPLIT_LABELS[p.selection]}, then the final "
           f"seeds; runs "
           f"beyond the experiment's own (python -m hut.tune experiment={experiment}; hut/plan/search.py says how "
           f"each is counted):", ""]
    out += to_text(simple(["cell", "grid", "search runs", "final runs (at most)", "h est."], rows,
                          align="llrrr")).splitlines()
    n_search, n_final = sum(ln.search_runs for ln in lines), sum(ln.final_runs for ln in lines)
    unknown = [ln for ln in lines if ln.hours is None]
    total = None if unknown else sum(ln.hours for ln in lines)
    both = None if total is None or experiment_hours is None else total + experiment_hours
    out += ["", f"search total (est.): {n_search} search runs + at most {n_final} final runs: "
            + (f"unknown GPU-hours ({len(unknown)} cell(s) without an estimate)" if total is None else
               f"at most {fmt_hours(total)} GPU-hours")
            + f" on one {kind}; with the experiment's own runs: "
            + ("unknown" if both is None else f"at most {fmt_hours(both)} GPU-hours")]
    return out
