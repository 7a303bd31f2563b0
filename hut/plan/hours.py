"""How long one run takes on a GPU kind, estimated: :func:`run_time` (a value; nothing is stored).

A run is phases of steps: training steps, then per epoch either evaluation batches or, for a task
that decodes (its config has ``max_new_tokens``), decoding steps. Each step takes

    max(FLOP time, kernel floor)

* **FLOP time**: the step's FLOPs / (``peak_tflops`` × ``utilisation`` of ``hardware.yaml``; decoding at
  ``decode_utilisation``). FLOPs per token are :func:`hut.flops.measure`'s count of one training step
  and of one forward pass on 1 × 128 tokens, divided by 128; tokens per step are the batch × the
  task's padded length (``datasets.yaml``; the run's ``max_length`` where it was not measured, an
  upper bound); a decoding step is one token per sequence and beam.
* **kernel floor**: the kernels of the step (:func:`hut.plan.kernels.count`, counted on the cell's model
  and method) × ``kernel_us`` of the GPU kind (forward kernels at ``forward``; backward and optimizer
  kernels at ``backward``); evaluation and decoding steps: the inference forward's kernels.

Examples per epoch are ``datasets.yaml``'s counts (capped by ``data.max_train_samples`` /
``max_eval_samples``) × its ``features_per_example`` (SQuAD: windows per question); a tune split
(``data.tune_samples``) leaves the training split and is evaluated every epoch with dev. What cannot be
estimated is an :class:`Unknown` with the reason, never a zero.

A caller that adds runs to a cell (e.g. a learning-rate search: grid points × search seeds) calls
:func:`run_time` with each added run's own composed config (its training set may be smaller) and adds
``hours`` × runs; an :class:`Unknown` keeps the total unknown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from hut import flops
from hut.plan import kernels
from hut.plan.assumptions import datasets, hardware
from hut.tasks import task_info


@dataclass(frozen=True)
class Phase:
    """The steps of one kind in a run (training steps, evaluation batches, decoding steps)."""

    name: str
    steps: int
    flop_s: float  # one step at the assumed FLOP rate
    kernels: int  # kernels one step launches
    floor_s: float  # their cost at kernel_us

    @property
    def step_s(self) -> float:
        return max(self.flop_s, self.floor_s)

    @property
    def bound(self) -> str:
        return "kernels" if self.floor_s >= self.flop_s else "FLOPs"

    @property
    def seconds(self) -> float:
        return self.steps * self.step_s


@dataclass(frozen=True)
class RunTime:
    """One run's phases; ``notes`` say where an input was an upper bound or an assumption."""

    phases: tuple[Phase, ...]
    notes: tuple[str, ...] = ()

    @property
    def hours(self) -> float:
        return sum(p.seconds for p in self.phases) / 3600


@dataclass(frozen=True)
class Unknown:
    """No estimate, and why."""

    reason: str


def examples(d: Mapping[str, Any], split: str, cap: int | None) -> int:
    """Examples (features) per pass over a split: the count, capped, × ``features_per_example``."""
    n = int(d[split]) if cap is None else min(int(d[split]), int(cap))
    return math.ceil(n * float(d.get("features_per_example") or 1))


def run_time(cfg: Mapping[str, Any], g: Mapping[str, Any]) -> RunTime | Unknown:
    """One run of the composed config ``cfg`` on the GPU kind ``g`` (:func:`hut.plan.estimate.gpu`)."""
    t, task, data = cfg["trainer"], cfg["task"], cfg["data"]
    name = str(task["name"])
    d = datasets().get(name)
    if d is None:
        return Unknown(f"task '{name}' has no sizes in hut/plan/datasets.yaml (examples per split and tokens per "
                       f"example: python -m hut.plan.lengths tasks=[{name}])")
    m = flops.measure(cfg["model"], cfg["method"])
    if m.error:
        return Unknown(f"FLOPs not counted ({m.error})")
    precision = str(t.get("mixed_precision") or "no")
    try:
        k = kernels.count(cfg["model"], cfg["method"], task_info(name)[0], precision)
    except Exception as e:  # noqa: BLE001 - a model or method that cannot run here: say so, plan the rest
        return Unknown(f"kernels not counted: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}")
    hw, notes = hardware(), []
    cost = g["kernel_us"]
    rate = float(g["peak_tflops"]) * 1e12
    per_tok_train = (m.train.matmul + m.train.elementwise) / (flops.BATCH * flops.SEQ_LEN)
    per_tok_infer = (m.infer.matmul + m.infer.elementwise) / (flops.BATCH * flops.SEQ_LEN)
    batch, accum, max_len = int(t["batch_size"]), int(t.get("grad_accum") or 1), int(t["max_length"])
    padded = d.get("padded_tokens")
    if padded is None:
        notes.append(f"{name}'s lengths not measured ({d.get('measured')}): {max_len} tokens per example assumed, "
                     f"an upper bound")
    tokens = min(float(padded or max_len), max_len)

    tune = int(data.get("tune_samples") or 0)  # held out of training, scored every epoch beside dev
    n_train = examples({**d, "train": max(int(d["train"]) - tune, 0)}, "train", data.get("max_train_samples"))
    per_epoch = math.ceil(n_train / (batch * accum))
    steps = per_epoch * int(t["epochs"])
    if t.get("max_steps") is not None:
        steps = min(steps, int(t["max_steps"]))
    train = Phase("train", steps, batch * accum * tokens * per_tok_train / (rate * hw["utilisation"]),
                  accum * (k["forward"] + k["backward"]) + k["optimizer"],
                  (accum * (k["forward"] * cost["forward"] + k["backward"] * cost["backward"])
                   + k["optimizer"] * cost["backward"]) / 1e6)

    evals = math.ceil(steps / per_epoch)
    n_eval, eval_bs = examples(d, "eval", data.get("max_eval_samples")), int(t["eval_batch_size"])
    batches = math.ceil(n_eval / eval_bs) + math.ceil(tune / eval_bs)
    floor = k["inference"] * cost["forward"] / 1e6
    if task.get("max_new_tokens"):  # every eval item, one token per step for each sequence and beam
        beams, new = int(task.get("num_beams") or 1), int(task["max_new_tokens"])
        ev = Phase("decode", evals * batches * new,
                   eval_bs * beams * per_tok_infer / (rate * hw["decode_utilisation"]), k["inference"], floor)
        notes.append(f"{name}: decoding counted as {new} new tokens for every item (no early stop) and the model's "
                     f"forward kernels per token (beam bookkeeping not counted)")
    else:
        ev_tokens = min(float(d.get("eval_tokens") or max_len), max_len)
        ev = Phase("eval", evals * batches, eval_bs * ev_tokens * per_tok_infer / (rate * hw["utilisation"]),
                   k["inference"], floor)
    return RunTime((train, ev), tuple(notes))
