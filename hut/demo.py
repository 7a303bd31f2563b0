"""``make demo`` / ``python -m hut.demo``: the suite end to end on small real models, on a CPU.

* a mini Table 1: MiniLM (real pretrained BERT encoder) with HUT, LoRA, BitFit and full fine-tuning
  on SST-2, MRPC, CoLA and STS-B subsets, 2 seeds (SST-2 joins the three tasks the demo was
  specified with: it is the one classification task that MiniLM learns within the demo's budget;
  see README "What the demo shows");
* a mini Table 3: SmolLM2-135M with HUT and LoRA, trained on part of the E2E dev split and scored on
  a subset of test MRs with the official-equivalent metrics, 1 seed;
* tables and the figure in results/demo/ (the same code as ``make tables``).

Runs go through the same trainer and records as the paper's sweeps, so a rerun skips finished runs
and only rebuilds the tables. Options (key=value): ``glue_methods=hut,lora,bitfit,ft``,
``glue_tasks=sst2,mrpc,cola,stsb``, ``seeds=0,1``, ``e2e_methods=hut,lora``, ``e2e=true``, and any
Hydra override prefixed with ``+`` is passed to every run (e.g. ``+trainer.max_steps=2``).
"""
from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "glue_tasks": "sst2,mrpc,cola,stsb",
    "glue_methods": "hut,lora,bitfit,ft",
    "seeds": "0,1",
    "e2e": "true",
    "e2e_methods": "hut,lora",
    "results_dir": "results/demo/runs",
    "out_dir": "results/demo",
}
# E2E on a CPU: train SmolLM2-135M on 320 (MR, reference) pairs of the dev split (40 steps), score
# 20 test MRs with beam 4; the HUT and LoRA runs took 107 s and 93 s on 2 cores, training and decoding
# included (README "What the demo shows"). Table 7 uses beam 10 and 5 epochs on 42k pairs; on a
# CPU that would take days.
E2E_OVERRIDES = ["model=smollm2", "task=e2e", "data.train_split=dev", "data.max_train_samples=320",
                 "data.max_eval_samples=20", "trainer.batch_size=8", "trainer.max_length=96",
                 "trainer.warmup_steps=4", "task.num_beams=4", "trainer.eval_batch_size=20"]


def _hub_reachable(timeout: float = 5.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        urllib.request.urlopen("https://huggingface.co", timeout=timeout)
        return True
    except Exception:
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
        "(glue/<TASK>/{train,dev}.tsv, e2e/official/*.csv; see README 'Data'), e.g. "
        "`HUT_DATA=../shared/data make demo`, or run with access to the Hugging Face hub."
        + (f" (HUT_DATA={d} has no glue/ folder)" if d else "")
    )


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    opts, extra = dict(DEFAULTS), []
    for a in argv:
        if a.startswith("+"):
            extra.append(a[1:])
        elif "=" in a and a.split("=", 1)[0] in opts:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            sys.exit(f"hut.demo: unknown argument {a!r}; known: {', '.join(DEFAULTS)} and +<hydra override>")
    return opts, extra


def run_all(opts: dict, extra: list[str]) -> list[dict]:
    from hydra import compose, initialize_config_dir

    from hut.train import _validate
    from hut.trainer import run

    data = choose_data_source()
    common = ["experiment=demo", f"results_dir={opts['results_dir']}", *data]
    jobs = []
    for task in filter(None, opts["glue_tasks"].split(",")):
        for method in filter(None, opts["glue_methods"].split(",")):
            for seed in filter(None, opts["seeds"].split(",")):
                jobs.append(common + [f"task={task}", f"method={method}", f"seed={seed}"])
    if opts["e2e"].lower() == "true":
        for method in filter(None, opts["e2e_methods"].split(",")):
            jobs.append(common + E2E_OVERRIDES + [f"method={method}", "seed=0"])
    out = []
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        for i, ov in enumerate(jobs, 1):
            cfg = compose("train", overrides=ov + extra)
            print(f"[demo {i}/{len(jobs)}] {cfg.task.name} {cfg.method.name} {cfg.model.name} seed={cfg.seed}",
                  flush=True)
            _validate(cfg)
            out.append(run(cfg))
    return out


def main(argv: list[str] | None = None) -> None:
    opts, extra = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    run_all(opts, extra)
    from hut.aggregate import main as aggregate_main

    aggregate_main([f"results_dir={opts['results_dir']}", f"out_dir={opts['out_dir']}", "experiment=demo"])
    print(f"hut.demo: done in {time.time() - t0:.0f}s; tables in {opts['out_dir']}/tables, figure in "
          f"{opts['out_dir']}/figures")


if __name__ == "__main__":
    main()
