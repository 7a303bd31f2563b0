"""``make demo`` / ``python -m hut.demo``: the suite end to end on small real models, on a CPU.

A thin driver, in two phases, through the same trainer and records as ``python -m hut.train -m`` (a
rerun skips every finished run):

1. every cell of ``experiment=demo`` (MiniLM, HUT and LoRA on SST-2 and STS-B subsets, 5 seeds, each
   row at its own learning rate: the verdict *as configured*), ``demo_rank`` (the mini Table 5: HUT at
   r = 1, 8, 64 and hut_compact with Adam's eps × r) and ``demo_e2e`` (the mini Table 3: SmolLM2 on an
   E2E subset), together with the learning-rate search of every experiment that has a protocol
   (``configs/tune/demo.yaml``: each (row, task) over its grid on the held-out tune split; the grid
   point at a row's own learning rate is that row's run);
2. each searched cell's learning rate chosen (``hut.tune``: written beside its runs) and its final
   seeds run at it (the verdict *tuned*);

then the aggregator's Tables 1, 3 and 5, the cost table, Figure 3, the learning-rate figure and the
reproduction report (``report.md``, every claim judged as configured and tuned) in ``results/demo/``.
Arguments: Hydra overrides passed to every run (``trainer.max_steps=2``), plus
``experiments=demo,demo_rank,demo_e2e`` (which to run), ``out_dir=results/demo``, ``workers=N``
(runs shared among N processes of one thread each; 1: one after another in this process) and
``tune.<key>=value`` (an override of the search protocols, ``tune.grid=[...]``).
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
from hut.runtime import device
from hut.tune import protocol as proto
from hut.tune.jobs import Workers, run_jobs
from hut.tune.search import Job, final_jobs, plan, search_jobs, select

EXPERIMENTS = ("demo", "demo_rank", "demo_e2e")  # make demo
ALL_EXPERIMENTS = EXPERIMENTS
# What the aggregator reads for each table: demo and demo_e2e feed Tables 1 and 3 (experiment name
# `demo`), demo_rank the mini Table 5; the report (report.md) tests the claims on them.
AGGREGATE = ["experiment=demo", "experiments.table5=demo_rank", "tables=[1,3,5]"]
OUT_DIR = "results/demo"
# make demo's default: two one-thread processes beat one process on two threads here (python -m hut.bench.workers)
WORKERS = 2
OWN = ("experiments", "out_dir", "workers")


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


def parse_args(argv: list[str]) -> tuple[list[str], list[str], str, int, list[str]]:
    """(experiments, Hydra overrides for every run, out_dir, workers, the search protocols' overrides)."""
    own, extra = split_own(argv, OWN, "hut.demo",
                           "usage: python -m hut.demo [experiments=demo,demo_rank,demo_e2e] [out_dir=results/demo] "
                           "[workers=N] [tune.KEY=VALUE ...] [Hydra overrides key=value for every run] (docs/demo.md)")
    exps = [e for e in own["experiments"].split(",") if e] if "experiments" in own else list(EXPERIMENTS)
    try:
        workers = int(own.get("workers", WORKERS))
    except ValueError:
        workers = 0
    if workers < 1:
        raise SystemExit(f"hut.demo: workers= takes a positive integer (got {own.get('workers')!r})")
    # a Hydra override for every run (a leading "+", as older versions took them, is dropped)
    extra = [a[1:] if a.startswith("+") else a for a in extra]
    tune = [a[len("tune."):] for a in extra if a.startswith("tune.")]
    return exps, [a for a in extra if not a.startswith("tune.")], own.get("out_dir", OUT_DIR), workers, tune


def precision_note(configs) -> str | None:
    """What to pass when the runs ask for bf16 autocast on a CPU that does bf16 only by emulation (where
    float32 is faster); None otherwise. The runs keep the precision they ask for."""
    cpu_bf16 = [c for c in configs if str(c.trainer.mixed_precision) == "bf16" and str(c.trainer.device) == "cpu"]
    if not cpu_bf16 or device.cpu_bf16_native() is not False:
        return None
    return ("hut.demo: this CPU has no native bf16 (AVX512-BF16 or AMX), so the demo's bf16 autocast "
            "(configs/experiment/demo.yaml) runs slower here than float32; pass trainer.mixed_precision=no "
            "for a faster demo in float32")


def run_all(experiments: list[str], extra: list[str], workers: int = 1,
            tune: list[str] = ()) -> tuple[list[dict], str]:
    """Every run of the experiments and of their searches (finished ones are skipped); (records, results_dir)."""
    data = choose_data_source()
    runs = tuple(data + extra)
    own = [Job(f"{e} {' '.join(c.overrides)} seed={s}", tuple(c.run_overrides(s, runs)))
           for e in experiments for c in ex.cells(e) for s in ex.seeds(e)]
    searches = [(p, plan(p, e, runs)) for e in experiments if e in proto.known()
                for p in [proto.load(e, tune)]]
    # every experiment's first run composed (a bad override is Hydra's error naming the key) before any runs
    firsts = [compose(next(j for j in own if j.label.startswith(f"{e} ")).overrides) for e in experiments]
    results_dirs = {str(c.results_dir) for c in firsts}
    if note := precision_note(firsts):
        print(note, flush=True)
    if len(results_dirs) != 1:
        sys.exit(f"hut.demo: the demo's runs write to more than one results_dir ({sorted(results_dirs)})")
    jobs = [j for p, cells in searches for j in search_jobs(cells, p)] + own
    with Workers(workers) as pool:
        records = dict(zip(jobs, run_jobs(jobs, pool, prefix="demo")))
        finals = []
        for p, cells in searches:
            finals += [j for j in final_jobs(select(cells, p, records), p) if j not in records]
        return list(records.values()) + run_jobs(finals, pool, prefix="demo final"), results_dirs.pop()


def main(argv: list[str] | None = None) -> None:
    experiments, extra, out_dir, workers, tune = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    _, results_dir = run_all(experiments, extra, workers, tune)
    aggregate.main([f"results_dir={results_dir}", f"out_dir={out_dir}", *AGGREGATE])
    print(f"hut.demo: done in {time.time() - t0:.0f}s; tables in {out_dir}/tables, figures in {out_dir}/figures, "
          f"report {out_dir}/report.md")


if __name__ == "__main__":
    main()
