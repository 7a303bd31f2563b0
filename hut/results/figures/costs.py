"""What a run's config costs, for the axes of Figure 3 and the page's Pareto plots.

Each measure is a :class:`Measure` (its name, unit, which direction is better, and how it is
obtained) and a function of a finished run:

* ``params``: trainable parameters without the task head (the record's ``params.adapter``);
* ``flops``: matmul FLOPs of one training step of the run's model and method config, measured on the
  model built from config (:func:`hut.flops.measure`, cached by config);
* ``step_time``: the run's wall time over its optimiser steps (the record's ``wall_time_s`` / last
  ``step``: training and every evaluation, on the machine that ran it);
* ``memory``: peak training memory *estimated* for the run's batch, length and precision
  (:mod:`hut.memory`: float32 weights, gradients and AdamW state of what trains, and the
  activations autograd saves, measured on shortened copies; cached). Records hold no measured peak.

``flops`` and ``memory`` build models; ``measure=False`` (the aggregator's ``flops=false``) skips
them. A value that cannot be had is None with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from hut import flops
from hut import memory
from hut.results.runs import Run

GIB = 2 ** 30


@dataclass(frozen=True)
class Measure:
    key: str
    label: str  # axis label, with its unit
    lower_is_better: bool
    how: str
    needs_models: bool  # builds a model (skipped with flops=false)
    value: Callable[[Run], tuple[float | None, str]]  # (value, why None)


def _model_cfg(run: Run) -> dict | None:
    """The model config the run had (its record's): None without an ``arch``, never today's config file,
    which may differ from the run's."""
    return dict(run.model_cfg) if run.model_cfg and "arch" in run.model_cfg else None


NO_ARCH = "no model arch in its record"


def _params(run: Run) -> tuple[float | None, str]:
    n = run.params.get("adapter")
    return (float(n), "") if isinstance(n, int) else (None, "no params.adapter in its record")


def _flops(run: Run) -> tuple[float | None, str]:
    if not run.method_cfg:
        return None, "no method config in its record"
    if (model_cfg := _model_cfg(run)) is None:
        return None, NO_ARCH
    m = flops.measure(model_cfg, dict(run.method_cfg))
    return (None, m.error) if m.error else (m.train.matmul / 1e9, "")


def _step_time(run: Run) -> tuple[float | None, str]:
    steps = run.last_step
    if run.wall_time_s is None or not steps:
        return None, "no wall_time_s or steps in its record"
    return run.wall_time_s / steps, ""


def _memory(run: Run) -> tuple[float | None, str]:
    cfg = run.config or {}
    trainer = cfg.get("trainer") or {}
    if not run.method_cfg or not trainer.get("batch_size") or not trainer.get("max_length"):
        return None, "no method, trainer.batch_size or trainer.max_length in its record"
    if (model_cfg := _model_cfg(run)) is None:
        return None, NO_ARCH
    m = flops.measure(model_cfg, dict(run.method_cfg))
    if m.error:
        return None, m.error
    try:
        pts = memory.activations(model_cfg, dict(run.method_cfg), str(trainer.get("mixed_precision") or "no"))
    except Exception as e:  # noqa: BLE001 - a method that cannot run shortened: the axis says so for this row
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    total = sum(memory.state_bytes(m.params).values()) + memory.activation_bytes(
        pts, memory.layers_of(model_cfg), int(trainer["batch_size"]), int(trainer["max_length"]))
    return total / GIB, ""


MEASURES: Mapping[str, Measure] = {m.key: m for m in (
    Measure("params", "trainable parameters (without the task head)", True, "the record's params.adapter", False,
            _params),
    Measure("flops", f"GFLOPs per training step, measured ({flops.BATCH} × {flops.SEQ_LEN} tokens)", True,
            "hut.flops.measure on the run's model and method config", True, _flops),
    Measure("step_time", "seconds per optimiser step (the run's wall time / its steps)", True,
            "the record's wall_time_s / its last step (training and evaluation)", False, _step_time),
    Measure("memory", "peak training memory, estimated (GiB)", True,
            "hut.memory at the run's batch, length and precision (an estimate: records hold no peak)", True,
            _memory),
)}


def measure_run(run: Run, key: str, measure: bool = True) -> tuple[float | None, str]:
    m = MEASURES[key]
    if m.needs_models and not measure:
        return None, "not measured (flops=false)"
    return m.value(run)


def span_note(values, unit: str = "") -> str:
    """When the values differ by under 1% of the largest: a note saying so, with the range; else ""."""
    vals = [float(v) for v in values if v is not None]
    if len(vals) < 2 or max(abs(v) for v in vals) == 0:
        return ""
    lo, hi = min(vals), max(vals)
    rel = (hi - lo) / max(abs(v) for v in vals)
    if rel >= 0.01:
        return ""
    return f"all within {rel:.2%} of each other ({lo:.4g}–{hi:.4g}{unit})"
