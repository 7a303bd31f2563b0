"""Kernels per step, counted: the latency floor of the plan's hours (``python -m hut.plan.kernels``).

Eager PyTorch launches about one GPU kernel per ATen operator it dispatches, and the host pays for
each one (Python and the module call, the dispatcher, the CUDA launch) whether the kernel does much
work or not. At the small batches of PEFT fine-tuning the kernels are short, so a step cannot be
faster than its kernels can be issued: :mod:`hut.plan.hours` takes the larger of that floor and the
step's FLOP time.

**Counted** here: every ATen operator dispatched during one training step of the cell's model and
method, under the run's autocast, with a ``TorchDispatchMode``, by phase:

* ``forward``: the model's forward pass and its loss;
* ``backward``: ``loss.backward()`` (the autograd engine's kernels, and a method's own Python
  backward, e.g. HUT's);
* ``optimizer``: gradient clipping and an AdamW step with ``foreach=True`` (the CUDA default), then
  ``zero_grad``;
* ``inference``: one forward pass under ``no_grad`` in eval mode (evaluation, and each decoding step).

Operators that launch nothing are not counted: views, allocations, ``detach``, profiler markers and
``.item()`` reads of CPU scalars (AdamW's step counters stay on the host). A cuBLAS or attention call
can launch more than one kernel, and a ``foreach`` operator launches one per chunk of its tensors:
the count is a lower bound of the launches, one per operator.

The models are built from config on the CPU at the real width but 2 and 3 layers (batch 2, 16
tokens; attention dropout off, so the CPU takes its fused attention kernel as a GPU does); what one
layer adds is scaled to the model's depth. The counts are cached on disk by configs, precision, torch
and code, like the FLOPs counts.

``python -m hut.plan.kernels`` prints the calibration of ``hardware.yaml``'s cost per forward kernel
from the LoRA paper's published latencies (:func:`calibrate`).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hut import flops
from hut.build import adapt, load_base
from hut.config import HELP, load_group
from hut.files.atomic import write_json_atomic
from hut.plan.assumptions import hardware
from hut.runtime.console import quiet_libraries
from hut.results.render.formats import grid, simple
from hut.memory import ATTENTION_DROPOUT, AUTOCAST, LAYERS, layers_of

PHASES = ("forward", "backward", "optimizer", "inference")
#: operators that launch no kernel (views are recognised by their schema, ``OpOverload.is_view``)
NO_KERNEL = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "detach", "alias", "lift_fresh",
    "_unsafe_view", "_local_scalar_dense", "_record_function_enter_new", "_record_function_exit", "set_",
})
#: the arch keys that hold a model's depth (Hugging Face configs: BERT/RoBERTa/Llama, GPT-2)
DEPTH_KEYS = ("num_hidden_layers", "n_layer")
BATCH, SEQ = 2, 16


class KernelCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched inside it that launch a kernel, by operator name."""

    def __init__(self):
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in NO_KERNEL:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def _batch(kind: str) -> dict[str, torch.Tensor]:
    ids = torch.full((BATCH, SEQ), 5, dtype=torch.long)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if kind == "generation":
        out["labels"] = ids.clone()
    elif kind == "qa":
        out["start_positions"] = out["end_positions"] = torch.zeros(BATCH, dtype=torch.long)
    else:
        out["labels"] = torch.zeros(BATCH) if kind == "regression" else torch.zeros(BATCH, dtype=torch.long)
    return out


def _shortened(model_cfg: Mapping[str, Any], layers: int) -> dict:
    cfg = copy.deepcopy(dict(model_cfg))
    key = next((k for k in DEPTH_KEYS if k in cfg["arch"]), None)
    if key is None:
        raise ValueError(f"model '{cfg.get('name')}': its arch has no depth key ({', '.join(DEPTH_KEYS)})")
    cfg["arch"] = {**cfg["arch"], key: layers, **dict.fromkeys(ATTENTION_DROPOUT, 0.0)}
    return cfg


def count_step(model, kind: str, precision: str, train: bool = True) -> dict[str, int]:
    """Kernels of one training step and of one inference forward, by phase (:data:`PHASES`; with
    ``train=False`` the inference forward only)."""
    batch = _batch(kind)
    cast = (torch.autocast("cpu", dtype=AUTOCAST[precision]) if precision in AUTOCAST else contextlib.nullcontext())
    model.eval()
    with KernelCounter() as k, torch.no_grad(), cast:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    out = {"inference": k.total}
    if not train:
        return out
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    for _ in range(2):  # the first step creates AdamW's state: count the second, as every later step runs
        model.train()
        with KernelCounter() as k, cast:
            loss = model(**batch).loss
        out["forward"] = k.total
        with KernelCounter() as k:
            loss.backward()
        out["backward"] = k.total
        with KernelCounter() as k:
            if params:
                torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
                opt.step()
            opt.zero_grad(set_to_none=True)
        out["optimizer"] = k.total
    return out


def _measure(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any] | None, kind: str,
             precision: str, train: bool) -> dict[str, dict[str, int]]:
    out = {}
    for layers in LAYERS:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            base = load_base(_shortened(model_cfg, layers), kind, num_labels=2, pretrained=False, with_tokenizer=False)
            model = base.model if method_cfg is None else adapt(base, dict(method_cfg)).model
            out[str(layers)] = count_step(model, kind, precision, train)
    return out


def _code_key() -> str:
    """What a count depends on besides its configs: torch and the code that builds and runs the model."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(torch.__version__.encode())
    for f in [Path(__file__), root / "models.py", root / "build.py", *sorted((root / "methods").rglob("*.py"))]:
        h.update(f.read_bytes())
    return h.hexdigest()


def count(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any] | None, kind: str,
          precision: str, train: bool = True) -> dict[str, int]:
    """Kernels per phase of one step at the model's real depth (``method_cfg=None``: the bare model, every
    weight trained; ``train=False``: the inference forward only).

    Cached on disk (``<cache_root>/plan/kernels-*.json``); a failure raises (the plan says why).
    """
    key = hashlib.sha256(json.dumps([flops.canonical(model_cfg), flops.canonical(method_cfg), kind, precision,
                                     train, _code_key()]).encode()).hexdigest()[:32]
    path = flops.cache_dir().parent / "plan" / f"kernels-{key}.json"
    try:
        pts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pts = _measure(model_cfg, method_cfg, kind, precision, train)
        with contextlib.suppress(OSError):
            write_json_atomic(path, pts)
    (a, lo), (b, hi) = ((n, pts[str(n)]) for n in LAYERS)
    depth = layers_of(model_cfg)
    return {p: lo[p] + (depth - a) * (hi[p] - lo[p]) // (b - a) for p in lo}


# ------------------------------------------------------------------------------------------ calibration
def calibrate(cal: Mapping[str, Any]) -> dict[str, Any]:
    """Host time per forward kernel from a published latency study (``hardware.yaml``'s ``calibration``).

    The study times one forward pass of a model with and without adapter layers at a small batch; the
    adapters add kernels and little arithmetic, so the added milliseconds over the added kernels
    (counted here on the same model, method and input) is the host's cost per kernel. Each row:
    ``{label, method (a configs/method group or null), options, ms}``; the first row is the bare model.
    """
    model_cfg = load_group("model", cal["model"])
    rows = []
    for r in cal["rows"]:
        method = None if r["method"] is None else {**load_group("method", r["method"]), **(r.get("options") or {})}
        rows.append({**r, "kernels": count(model_cfg, method, cal["kind"], cal["precision"], train=False)["inference"]})
    base = rows[0]
    per = [(r["ms"] - base["ms"]) * 1000 / (r["kernels"] - base["kernels"]) for r in rows[1:]]
    return {"rows": rows, "us_per_kernel": per, "mean_us": sum(per) / len(per)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m hut.plan.kernels   (no arguments: prints hardware.yaml's calibration)"
    if argv and argv[0] in HELP:
        print(usage)
        return 0
    if argv:
        raise SystemExit(usage)
    quiet_libraries()
    cal = hardware()["calibration"]
    res = calibrate(cal)
    print(f"calibration of the cost per forward kernel: {cal['source']}")
    print(f"  {cal['model']}, one forward pass at batch {cal['batch']} x {cal['tokens']} tokens, precision "
          f"{cal['precision']}; kernels counted by hut.plan.kernels on the same model and methods")
    base = res["rows"][0]
    rows = [[r["label"], f"{r['ms']:.1f}", str(r["kernels"]),
             "" if us is None else f"+{r['ms'] - base['ms']:.1f}", "" if us is None else f"+{r['kernels'] - base['kernels']}",
             "" if us is None else f"{us:.1f}"]
            for r, us in zip(res["rows"], [None, *res["us_per_kernel"]])]
    header = ["row", "ms (published)", "kernels", "added ms", "added kernels", "us per kernel"]
    print("\n".join("  " + line for line in grid(simple(header, rows), "text")))
    print(f"  the bare model at the mean: {base['kernels']} kernels x {res['mean_us']:.1f} us = "
          f"{base['kernels'] * res['mean_us'] / 1000:.1f} ms of its published {base['ms']} ms (which also holds its "
          f"arithmetic: the floor is the larger part at this batch)")
    print(f"  mean: {res['mean_us']:.1f} us per forward kernel "
          f"(hardware.yaml takes {sorted({g['kernel_us']['forward'] for g in hardware()['gpus'].values()})})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
