"""The run config's schema: a composed config checked section by section before anything is written.

:func:`validate` takes the config ``hut.train`` composes (``configs/train.yaml`` with its groups and
overrides) and refuses it with one line naming the key and what it expects:

* the top level (:class:`RunConfig`): no key of its own beyond these (``+foo=1`` is refused);
* ``trainer`` (:class:`TrainerConfig`), ``data`` (the task's :attr:`hut.tasks.Task.data_config`;
  its splits among the task's :attr:`~hut.tasks.Task.splits`) and ``task`` (the task's
  :attr:`~hut.tasks.Task.task_config`): :func:`hut.config.typed.parse`, each key's type and range, an
  unknown key named, and every key there (the group files set them all, the code reads them without a
  fallback: ``~trainer.weight_decay`` is refused here, not met as a ``KeyError`` mid-run);
* ``model`` (:class:`ModelConfig`): the keys the model files use, with the ones its ``source`` needs;
* ``method``: its registered class's typed config (:meth:`hut.methods.config.MethodConfig.parse`);
* ``task`` must be registered, and the ``model`` able to do its kind (:func:`hut.build.check_kind`:
  an encoder cannot generate, a decoder cannot extract spans);
* ``logger``: ``none`` or ``wandb``, in mode ``offline``, ``online`` or ``disabled``;
* ``data.tune_samples`` only for a task that holds out a tune split, never out of the reported split;
* ``data.source=local``: ``data.dir`` set and an existing folder.

The trainer calls it first (every run, from any entry point); ``hut.train`` calls it on the first job
of a sweep before Hydra launches any (:func:`hut.train.check_config`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from hut.build import check_kind
from hut.methods import build_method
from hut.runtime.device import CHOICES as DEVICES
from hut.tasks import TASKS, Task
from hut.config.typed import option, parse

PRECISIONS = ("no", "fp16", "bf16")
MODEL_SOURCES = {"hub": ("hf_id",), "package": ("package",), "gguf": ("package", "gguf_file"), "config": ("arch",)}
LOGGERS = ("none", "wandb")
LOGGER_MODES = ("offline", "online", "disabled")


@dataclass(frozen=True)
class RunConfig:
    """The top level of a run config (``configs/train.yaml``); the sections are checked on their own."""

    experiment_name: str = option("adhoc")  # first level of the record path
    table: str | None = option(None)  # the table an experiment feeds (hut.results.tables)
    seed: int = option(0, minimum=0)
    variant: str | None = option(None)  # a row's size or a cell's targets / rank (in the record path)
    paper_row: dict | None = option(None)  # set by a paper row (configs/row/)
    results_dir: str = option("results/runs")
    force: bool = option(False)
    keep_checkpoint: bool = option(False)
    data: dict = option(None)
    trainer: dict = option(None)
    task: dict = option(None)
    model: dict = option(None)
    method: dict = option(None)
    logger: dict = option(None)


@dataclass(frozen=True)
class TrainerConfig:
    """``trainer``: how a run trains (``configs/train.yaml`` says what each key means)."""

    epochs: int = option(10, minimum=1)
    max_steps: int | None = option(None, minimum=1)
    lr: float = option(1e-4, above=0)
    head_lr: float | None = option(None, above=0)
    batch_size: int = option(16, minimum=1)
    eval_batch_size: int = option(64, minimum=1)
    grad_accum: int = option(1, minimum=1)
    weight_decay: float = option(0.01, minimum=0)
    adam_eps: float = option(1e-8, above=0)
    adam_beta2: float = option(0.999, minimum=0, below=1)
    warmup_ratio: float = option(0.06, minimum=0, maximum=1)
    warmup_steps: int | None = option(None, minimum=0)
    max_length: int = option(512, minimum=1)
    max_grad_norm: float | None = option(None, above=0)
    mixed_precision: str = option("no", choices=PRECISIONS)
    device: str = option("auto", choices=DEVICES)
    gpu_pin: str = option("auto", choices=("auto", "off"))
    log_every: int = option(10, minimum=1)
    checkpoint_every_steps: int = option(0, minimum=0)
    progress: bool = option(True)


@dataclass(frozen=True)
class ModelConfig:
    """``model`` (``configs/model/<name>.yaml``): where the weights and tokenizer come from (hut.models)."""

    name: str = option("", required=True)
    label: str = option("", required=True)  # how tables name the model
    source: str = option("hub", choices=tuple(MODEL_SOURCES), required=True)
    hf_id: str | None = option(None)  # source hub: the hub repository
    package: str | None = option(None)  # source package / gguf: the installed package holding the files
    subdir: str | None = option(None)  # source package: the folder inside it
    gguf_file: str | None = option(None)  # source gguf: the file inside the package
    tokenizer: str | None = option(None)  # source config: whose tokenizer (minilm)
    tokenizer_id: str | None = option(None)  # a hub tokenizer other than hf_id's
    pooling: str | None = option(None, choices=("cls", "mean"))  # an encoder's sentence pooling (default cls)
    head_prefixes: list = option([])  # parameter names of the task head (trained by every method)
    arch: dict | None = option(None)  # the transformers config: real-size models built without download
    local_dir: str | None = option(None)  # a local copy of the weights and tokenizer (docs/gpu.md)


def validate(cfg: DictConfig | Mapping[str, Any]) -> None:
    """One line (ValueError, or FileNotFoundError for the data folder) naming the first bad key."""
    c = _resolved(cfg)
    parse(RunConfig, c, "", require_all=True)
    for section in ("data", "trainer", "task", "model", "method", "logger"):
        if not isinstance(c.get(section), Mapping):
            raise ValueError(f"{section} must be set (a config group: {section}=NAME); got {c.get(section)!r}")
    task = _task(c["task"])
    parse(task.task_config, c["task"], "task", owner=f"for task {task.name}", require_all=True)
    parse(TrainerConfig, c["trainer"], "trainer", require_all=True)
    _data(c["data"], task)
    _model(c["model"])
    build_method(c["method"])
    check_kind(c["model"], task.kind, task.name)
    _logger(c["logger"])


def _resolved(cfg: DictConfig | Mapping[str, Any]) -> dict:
    """The resolved config; an interpolation that cannot be resolved is one line naming it."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - OmegaConf's and the paper resolver's errors: their first line
        raise ValueError((str(e).strip().splitlines() or [type(e).__name__])[0]) from None


def _task(task_cfg: Mapping[str, Any]) -> type[Task]:
    name = task_cfg.get("name")
    try:
        return TASKS.get(str(name))
    except KeyError as e:
        raise ValueError(f"task={name}: {e.args[0]}") from None


def _data(data: Mapping[str, Any], task: type[Task]) -> None:
    d = parse(task.data_config, data, "data", owner=f"for task {task.name}", require_all=True)
    for key in ("train_split", "eval_split"):
        if getattr(d, key) not in task.splits:
            raise ValueError(f"data.{key} must be one of {', '.join(task.splits)} for task {task.name} "
                             f"(got {getattr(d, key)!r})")
    if d.tune_samples is not None:
        if not task.tune_split:
            raise ValueError(f"data.tune_samples: task {task.name} holds out no tune split (GLUE tasks do); remove "
                             f"it, or choose on half of dev (a search protocol's selection: split_dev)")
        if d.train_split == d.eval_split:
            raise ValueError(f"data.tune_samples holds out part of data.train_split={d.train_split}, which is also "
                             f"data.eval_split: the tune split would overlap the reported split")
    if d.source != "local":
        return
    if not d.dir:
        raise FileNotFoundError("data.dir is not set: export HUT_DATA=/path/to/data (GLUE/E2E layout, "
                                "see docs/data.md), pass data.dir=..., or use data.source=hub")
    if not os.path.isdir(d.dir):
        raise FileNotFoundError(f"data.dir={d.dir}: no such directory (set HUT_DATA or data.dir)")


def _model(model: Mapping[str, Any]) -> None:
    m = parse(ModelConfig, model, "model", owner=f"for model {model.get('name')!r}")
    for key in MODEL_SOURCES[m.source]:
        if getattr(m, key) is None:
            raise ValueError(f"model.{key} must be set for model.source={m.source} (model {m.name!r})")


def _logger(logger: Mapping[str, Any]) -> None:
    if logger.get("name") not in LOGGERS:
        raise ValueError(f"logger must be one of {', '.join(LOGGERS)} (got {logger.get('name')!r})")
    if logger.get("mode") not in LOGGER_MODES:
        raise ValueError(f"logger.mode must be one of {', '.join(LOGGER_MODES)} (got {logger.get('mode')!r})")
