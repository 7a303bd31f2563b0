"""One line of the plan per cell of an experiment: its runs, which are finished, memory and hours.

Every figure here is an estimate, made as stated beside it:

* **finished**: a run whose record is a success with the fingerprint of the cell's composed config,
  what ``hut.train`` would skip; a success of another config is a *conflict* (``hut.train`` would
  stop there): the run store says which (:func:`hut.runs.store.standing`);
* **memory**: :mod:`hut.memory` at the cell's batch size and ``max_length`` (its longest sequence);
* **hours**: :func:`hut.plan.hours.run_time`: steps × max(FLOP time, kernel floor) per step, training
  and evaluation, each input with its basis (``hardware.yaml``, ``datasets.yaml``, the kernels counted
  by :mod:`hut.plan.kernels`); a cell it cannot estimate is *unknown*, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from omegaconf import OmegaConf

from hut.config import experiments as ex
from hut import flops
from hut.plan import hours as run_hours
from hut import memory
from hut.plan.assumptions import datasets, gpu, hardware
from hut.results.labels import task_label
from hut.results.tables.method_table import row_label
from hut.runs import store

GIB = 2 ** 30


@dataclass
class Line:
    """One cell of the sweep (seed excluded) and its estimates."""

    label: str
    task: str
    model: str
    seeds: tuple[int, ...]
    batch: int
    grad_accum: int
    max_length: int
    precision: str
    finished: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)  # bytes by part, and "total"
    steps: int | None = None
    hours: float | None = None  # one run, training + evaluation (None: unknown, see ``unknown``)
    time: run_hours.RunTime | None = None  # its phases: steps, FLOP time and kernel floor per step
    unknown: str | None = None  # why there is no hours estimate
    notes: list[str] = field(default_factory=list)
    fix: str | None = None  # what to change when it does not fit

    @property
    def left(self) -> int:
        return len(self.seeds) - len(self.finished)


def _label(cell: ex.Cell, cfg: Mapping[str, Any]) -> str:
    """The table's name of the row (:func:`hut.results.tables.method_table.row_label`), its variant when the
    name does not carry it (Tables 4/5: ``HUT [qv-r8]``), and the task."""
    m, variant = cfg["method"], cfg.get("variant")
    s = row_label((m["name"], variant, cfg["model"]["name"], None), m.get("label"), False)
    if variant and str(variant).lower() not in s.lower():
        s += f" [{variant}]"
    return f"{s} · {task_label(cfg['task']['name'])}"


def _finished(cfg: Mapping[str, Any], seeds: tuple[int, ...], results_dir: str) -> tuple[list[int], list[int]]:
    done, conflicts = [], []
    for s in seeds:
        standing = store.standing({**cfg, "seed": s, "results_dir": results_dir})
        if standing is not None:
            (done if standing == "finished" else conflicts).append(s)
    return done, conflicts


def _hours(cfg: Mapping[str, Any], line: Line, g: Mapping[str, Any]) -> None:
    est = run_hours.run_time(cfg, g)
    if isinstance(est, run_hours.Unknown):
        line.unknown = est.reason
        line.notes.append(f"hours unknown for {line.task}: {est.reason}")
        return
    line.time, line.hours = est, est.hours
    line.steps = est.phases[0].steps
    line.notes.extend(est.notes)


def _memory(cfg: Mapping[str, Any], line: Line, g: Mapping[str, Any]) -> None:
    m = flops.measure(cfg["model"], cfg["method"])
    if m.error:
        line.notes.append(f"memory not estimated: the model could not be built ({m.error})")
        return
    try:
        pts = memory.activations(cfg["model"], cfg["method"], line.precision)
    except Exception as e:  # noqa: BLE001 - a method that cannot run shortened: say so, plan the rest
        line.notes.append(f"memory not estimated for {line.label}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        return
    layers = memory.layers_of(cfg["model"])
    parts = {**memory.state_bytes(m.params),
             "activations": memory.activation_bytes(pts, layers, line.batch, line.max_length)}
    line.memory = {**parts, "total": sum(parts.values())}
    free = (float(g["memory_gib"]) - float(hardware()["headroom_gib"])) * GIB
    if line.memory["total"] <= free:
        return
    for k in (2, 4, 8, 16, 32, 64, 128):
        if line.batch % k == 0:
            total = sum(memory.state_bytes(m.params).values()) + memory.activation_bytes(
                pts, layers, line.batch // k, line.max_length)
            if total <= free:
                line.fix = (f"trainer.batch_size={line.batch // k} trainer.grad_accum={line.grad_accum * k} "
                            f"(the same batch of {line.batch * line.grad_accum}; est. {total / GIB:.1f} GiB)")
                return
    line.fix = "does not fit even at batch 1: a GPU with more memory"


def plan_lines(experiment: str, gpu_kind: str, results_dir: str) -> list[Line]:
    g = gpu(gpu_kind)
    seeds = ex.seeds(experiment)
    out = []
    for cell in ex.cells(experiment):
        cfg = cell.config
        t = cfg["trainer"]
        line = Line(_label(cell, cfg), cfg["task"]["name"], cfg["model"]["name"], seeds, int(t["batch_size"]),
                    int(t.get("grad_accum") or 1), int(t["max_length"]), str(t.get("mixed_precision") or "no"))
        line.finished, line.conflicts = _finished(cfg, seeds, results_dir)
        _memory(cfg, line, g)
        _hours(cfg, line, g)
        out.append(line)
    return out


def downloads(experiment: str) -> list[dict]:
    """The models and data sets the experiment reads, with their sizes and where each figure is from."""
    cfgs = [c.config for c in ex.cells(experiment)]
    out, seen = [], set()
    for cfg in cfgs:
        mc = cfg["model"]
        if ("model", mc["name"]) in seen:
            continue
        seen.add(("model", mc["name"]))
        floor = flops.measure(mc, None)
        n = floor.params.get("total") if not floor.error else None
        out.append({"what": f"model {mc.get('hf_id') or mc['name']}", "source": mc.get("source"),
                    "mb": None if n is None else 4 * n / 1e6,
                    "how": "parameters × 4 bytes (a float32 checkpoint, one format), counted on the model "
                           "built from config" if n is not None else "not counted"})
    for cfg in cfgs:
        task = cfg["task"]["name"]
        if ("task", task) in seen:
            continue
        seen.add(("task", task))
        d = datasets().get(task) or {}
        out.append({"what": f"data {task}", "source": cfg["data"].get("source"), "mb": d.get("download_mb"),
                    "how": "du -sm of a local copy in the distribution layout" if d.get("download_mb") is not None
                    else "not measured: no local copy of all its splits here to measure (datasets.yaml's "
                    "download_mb); text, small beside the model"})
    return out
