"""The task interface and registry: what the trainer asks of every task.

A task turns data into batches, a loss and dev metrics (:class:`Task`); :data:`TASKS` maps a
name to its class and refuses duplicates. The tasks themselves live beside this module, one per
file (``glue``, ``e2e``, ...).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from accelerate import PartialState

from hut.data.glue import subsample
from hut.registry import Registry
from hut.runtime.console import bar_disable
from hut.config.typed import option

TASKS: Registry[type["Task"]] = Registry("task")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` keys every task reads (``configs/train.yaml``); a task with keys of its own extends it
    (:attr:`Task.data_config`). Checked by :func:`hut.schema.validate` before anything runs."""

    source: str = option("local", choices=("local", "hub"))  # local: the file layout under data.dir
    dir: str | None = option(None)  # the local copy's root (default: $HUT_DATA)
    train_split: str = option("train")  # one of the task's splits (Task.splits)
    eval_split: str = option("dev")
    max_train_samples: int | None = option(None, minimum=1)  # a seeded subset; null: all
    max_eval_samples: int | None = option(None, minimum=1)
    subset_seed: int = option(0, minimum=0)
    # the tune split: examples of train_split held out of training and scored every epoch (hut.data.holdout)
    tune_samples: int | None = option(None, minimum=1)
    cache_dir: str | None = option(None)  # tokenised data; null: $HUT_CACHE or ~/.cache/hut


@dataclass(frozen=True)
class TaskConfig:
    """The ``task`` keys (``configs/task/<name>.yaml``): a GLUE task has its name only; a task with options
    of its own extends it (:attr:`Task.task_config`). Checked by :func:`hut.schema.validate`, every key
    required (the group file sets them all)."""

    name: str = option("")


class Task:
    name: str
    label: str  # how tables name the task
    kind: str  # classification | regression | generation | qa (hut.models: which Auto* class, which head)
    num_labels: int = 1
    best_metric: str = "score"  # the dev metric that selects the best epoch (higher is better)
    metric_label: str = "score"  # how tables name best_metric (GLUE: the paper's metric of the task)
    splits: ClassVar[tuple[str, ...]] = ("train", "dev")  # what data.train_split and data.eval_split may name
    tune_split: ClassVar[bool] = False  # whether it can hold out data.tune_samples and score them (evaluate_tune)
    data_config: ClassVar[type[DataConfig]] = DataConfig  # the data keys this task reads
    task_config: ClassVar[type[TaskConfig]] = TaskConfig  # the task keys it reads (configs/task/<name>.yaml)

    def __init__(self, cfg: Mapping[str, Any], tokenizer):
        self.cfg = cfg
        self.tok = tokenizer
        data = cfg["data"]
        self.source = data["source"]
        self.data_dir = data.get("dir")
        if self.source == "local" and not self.data_dir:
            raise FileNotFoundError(
                "data.dir is not set: point the environment variable HUT_DATA (or data.dir=...) at a "
                "directory in the GLUE/E2E layout (see docs/data.md), or use data.source=hub"
            )

    def train_dataset(self) -> list[dict]:
        raise NotImplementedError

    def bar_disable(self) -> bool | None:
        """tqdm's ``disable`` for this task's bars: none with ``trainer.progress=false`` or off the main
        process; else tqdm's own switch (none in a log file)."""
        return bar_disable(bool(self.cfg.get("trainer", {}).get("progress", True)), PartialState().is_main_process)

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model, batch) -> torch.Tensor:
        return model(**batch).loss

    def evaluate(self, model, accelerator, run_dir: Path) -> dict[str, float]:
        raise NotImplementedError

    def evaluate_tune(self, model, accelerator) -> dict[str, float] | None:
        """The dev metrics of the held-out tune split (``data.tune_samples``), or None when the run holds
        none out. Only tasks with :attr:`tune_split` hold one out (the schema refuses the key elsewhere)."""
        return None

    def dev_predictions(self) -> dict[str, list] | None:
        """What the last :meth:`evaluate` predicted, small and JSON-able, or None if the task keeps none.

        The trainer appends it, per epoch, to the run's ``dev_predictions.jsonl`` (:mod:`hut.results.
        judge.selection` reads it to select epochs on half of dev and score them on the other half). It must
        be enough for :meth:`score_predictions` to score any subset of the scored items.
        """
        return getattr(self, "_dev_predictions", None)

    @classmethod
    def score_predictions(cls, saved: Mapping[str, Any], indices: list[int], run_dir: Path) -> float:
        """``best_metric`` of the items ``indices`` (positions in the scored items) of one epoch's
        :meth:`dev_predictions`, as :meth:`evaluate` scores them; ``run_dir`` holds the run's files."""
        raise NotImplementedError(f"task {cls.name} keeps no per-epoch predictions to rescore")

    @classmethod
    def chance_score(cls, saved: Mapping[str, Any] | None) -> float | None:
        """``best_metric`` of a trivial predictor (a seed near it has not converged), given one epoch's
        :meth:`dev_predictions` (None if the run kept none); None when the task has no such baseline."""
        return None

    def eval_subset(self) -> dict[str, Any] | None:
        """Which items :meth:`evaluate` scores, for the run record; None when the task cannot say.

        The tasks that can say return :meth:`_eval_subset_of`'s dict: ``split``, ``unit`` (what an
        item is), ``n_scored`` of ``n_total``, ``max_eval_samples`` and ``subset_seed`` as
        configured, and ``indices``: the 0-based positions of the scored items in file order, or
        None when the whole split is scored.
        """
        return None

    def _eval_subset_of(self, split: str, unit: str, n_total: int) -> dict[str, Any]:
        """:meth:`eval_subset` for a split of ``n_total`` items subsampled the suite's way
        (:func:`hut.data.glue.subsample`, ``data.max_eval_samples`` seeded by ``data.subset_seed``)."""
        d = self.cfg["data"]
        max_samples, seed = d.get("max_eval_samples"), int(d.get("subset_seed", 0))
        indices = subsample(range(n_total), max_samples, seed)
        return {"split": split, "unit": unit, "n_scored": len(indices), "n_total": n_total,
                "max_eval_samples": None if max_samples is None else int(max_samples),
                "subset_seed": seed, "indices": None if len(indices) == n_total else indices}


def build_task(cfg: Mapping[str, Any], tokenizer) -> Task:
    name = cfg["task"]["name"]
    try:
        cls = TASKS.get(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return cls(cfg, tokenizer)


def task_info(name: str) -> tuple[str, int]:
    """(kind, num_labels) of a task without building it (the model depends on it)."""
    try:
        cls = TASKS.get(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return cls.kind, cls.num_labels


def cache_dir(cfg) -> str:
    return cfg["data"].get("cache_dir") or os.environ.get("HUT_CACHE") or str(Path.home() / ".cache" / "hut")
