"""How long a task's examples are, measured on a local copy: ``python -m hut.plan.lengths [tasks=[sst2,...]]``.

The plan's hours (:mod:`hut.plan.estimate`) need the tokens a training step really pays for: batches
are padded to their longest example (``tok.pad``), so the figure is the mean over shuffled batches
of the longest example in the batch, at the task's Table 6/7 batch size, capped at its
``max_length``. Measured here with the suite's own loaders (:func:`hut.tasks.build_task`, so any
registered task works) on ``$HUT_DATA`` and a tokenizer that needs no download: MiniLM's WordPiece
(tiny_roberta's, tiny_gpt2's). RoBERTa's and GPT-2's byte-level BPE give lengths of the same order
on English text but not equal ones: the figures are estimates, and ``hut/plan/datasets.yaml``
records them with this command. A split that is not available locally is skipped with its reason.
"""
from __future__ import annotations

import random
import statistics
import sys
from typing import Sequence

from omegaconf import OmegaConf

from hut.config import cli_options, compose
from hut.models import load_tokenizer
from hut.tasks import TASKS, build_task

#: a model whose tokenizer is on disk, per kind of task (generation needs an end-of-text token)
LOCAL_TOKENIZER = {"generation": "tiny_gpt2"}
DEFAULT_TOKENIZER = "tiny_roberta"


def padded_length(lengths: Sequence[int], batch: int, max_length: int, seed: int = 0) -> float:
    """Mean over one shuffled epoch of the longest (capped) example of each batch."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    longest = [min(max(lengths[i] for i in order[j:j + batch]), max_length) for j in range(0, len(order), batch)]
    return statistics.fmean(longest)


def measure(task: str, split: str, batch: int, max_length: int) -> dict:
    kind = TASKS.get(task).kind
    model = LOCAL_TOKENIZER.get(kind, DEFAULT_TOKENIZER)
    cfg = OmegaConf.to_container(compose([f"task={task}", f"model={model}", "data.source=local",
                                          f"data.train_split={split}", f"trainer.max_length={max_length}"]),
                                 resolve=True)
    t = build_task(cfg, load_tokenizer(cfg["model"]))
    lengths = [len(ex["input_ids"]) for ex in t.train_dataset()]
    return {"task": task, "split": split, "examples": len(lengths), "mean_tokens": round(statistics.fmean(lengths), 1),
            "padded_tokens": round(padded_length(lengths, batch, max_length), 1), "batch": batch,
            "max_length": max_length, "tokenizer": model}


def main(argv: Sequence[str] | None = None) -> int:
    o = cli_options(sys.argv[1:] if argv is None else argv, "plan_lengths", "hut.plan.lengths")
    for task in o["tasks"] or TASKS.names():
        for split in o["splits"]:
            try:
                print(measure(task, split, int(o["batch"]), int(o["max_length"])))
            except Exception as e:  # noqa: BLE001 - a split not available here: say so, go on
                print({"task": task, "split": split, "skipped": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
