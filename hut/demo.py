"""``make demo`` / ``python -m hut.demo``: the suite end to end on small real models, on a CPU.

A thin driver: it runs every cell of ``experiment=demo`` (MiniLM, HUT and LoRA on SST-2 and STS-B
subsets, 5 seeds; the grid is that file's ``hydra.sweeper.params``) and ``experiment=demo_rank``
(the mini Table 5: HUT at r = 1, 8, 64 and hut_compact with Adam's eps × r), in this process and
through the same trainer and records as ``python -m hut.train -m`` (a rerun skips every finished
run), then the aggregator's Tables 1, 3 and 5, the cost table, Figure 3 and the reproduction report
(``report.md``) in ``results/demo/``. ``experiment=demo_e2e`` (SmolLM2 on an E2E subset, the mini
Table 3) is not in the default list: its two runs take ~6.5 min on 2 cores and would put ``make demo``
over its 20 minutes; ``make demo-e2e`` (``experiments=demo_e2e``) runs it and rebuilds the same tables.
Arguments: Hydra overrides passed to every run (``trainer.max_steps=2``), plus
``experiments=demo,demo_rank,demo_e2e`` (which to run) and ``out_dir=results/demo``.
"""
from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

from hut import aggregate
from hut.config import experiments as ex
from hut.config import compose, split_own
from hut.trainer import run

EXPERIMENTS = ("demo", "demo_rank")  # make demo; demo_e2e: make demo-e2e (see above)
ALL_EXPERIMENTS = (*EXPERIMENTS, "demo_e2e")
# What the aggregator reads for each table: demo and demo_e2e feed Tables 1 and 3 (experiment name
# `demo`), demo_rank the mini Table 5; the report (report.md) tests the claims on them.
AGGREGATE = ["experiment=demo", "experiments.table5=demo_rank", "tables=[1,3,5]"]
OUT_DIR = "results/demo"


def _hub_reachable(timeout: float = 5.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        urllib.request.urlopen("https://huggingface.co", timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means: no hub
        return False


def choose_data_source() -> list[str]:
    """Local copy from HUT_DATA if it is there; else the hub; else stop with instructions."""
    d = os.environ.get("HUT_DATA")
    if d and (Path(d) / "glue").is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return ["data.source=local", f"data.dir={d}"]
    if _hub_reachable():
        return ["data.source=hub"]
    sys.exit(
        "hut.demo: no data. Set HUT_DATA to a directory in the documented layout "
        "(glue/<TASK>/{train,dev}.tsv, e2e/official/*.csv; see docs/data.md), e.g. "
        "`HUT_DATA=../shared/data make demo`, or run with access to the Hugging Face hub."
        + (f" (HUT_DATA={d} has no glue/ folder)" if d else "")
    )


def parse_args(argv: list[str]) -> tuple[list[str], list[str], str]:
    """(experiments, Hydra overrides for every run, out_dir)."""
    own, extra = split_own(argv, ("experiments", "out_dir"), "hut.demo",
                           "give experiments=..., out_dir=... or Hydra overrides (key=value) for every run")
    exps = [e for e in own["experiments"].split(",") if e] if "experiments" in own else list(EXPERIMENTS)
    # a Hydra override for every run (a leading "+", as older versions took them, is dropped)
    return exps, [a[1:] if a.startswith("+") else a for a in extra], own.get("out_dir", OUT_DIR)


def run_all(experiments: list[str], extra: list[str]) -> tuple[list[dict], str]:
    """Every run of the experiments (finished ones are skipped); (records, their results_dir)."""
    data = choose_data_source()
    jobs = [cell.run_overrides(seed, tuple(data + extra)) for e in experiments for cell in ex.cells(e)
            for seed in ex.seeds(e)]
    out, results_dirs = [], set()
    for i, ov in enumerate(jobs, 1):
        cfg = compose(ov)
        print(f"[demo {i}/{len(jobs)}] {cfg.task.name} {cfg.method.name} {cfg.model.name} seed={cfg.seed}",
              flush=True)
        out.append(run(cfg, ov))
        results_dirs.add(str(cfg.results_dir))
    if len(results_dirs) != 1:
        sys.exit(f"hut.demo: the demo's runs write to more than one results_dir ({sorted(results_dirs)})")
    return out, results_dirs.pop()


def main(argv: list[str] | None = None) -> None:
    experiments, extra, out_dir = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    _, results_dir = run_all(experiments, extra)
    aggregate.main([f"results_dir={results_dir}", f"out_dir={out_dir}", *AGGREGATE])
    print(f"hut.demo: done in {time.time() - t0:.0f}s; tables in {out_dir}/tables, figure in {out_dir}/figures, "
          f"report {out_dir}/report.md")


if __name__ == "__main__":
    main()
