"""Peak GPU memory of one training step, estimated from the model built from config (no download).

    peak ≈ weights + gradients + AdamW state + activations

* **weights**: every parameter in float32 (the trainer keeps float32 weights; bf16 autocast casts on
  the fly), 4 bytes each; **gradients**: 4 bytes per trainable parameter; **AdamW**: two float32
  moments, 8 bytes per trainable parameter. The counts are :func:`hut.flops.measure`'s (the model
  and method built as the trainer builds them).
* **activations**: the tensors autograd saves for the backward pass, *measured* with
  ``torch.autograd.graph.saved_tensors_hooks`` on a forward pass in training mode (dropout on), under
  the run's autocast, with the model's loss as Table 2 builds it (an encoder: a 2-label classifier,
  a task's 1-3 labels differ by bytes; a decoder: the language-model loss), on the CPU, at the real width but 2 and 3 layers and
  batch 1 at three short lengths (:data:`SEQS`); storages are counted once and parameters not at all.
  What one layer adds and what the rest costs are each fitted exactly by a quadratic in the length
  and evaluated at the run's depth, batch and length. Attention dropout is off in the measured
  copies (:data:`ATTENTION_DROPOUT`): with it the CPU falls back to an unfused kernel that keeps the
  ``length²`` probabilities, which a GPU's fused kernels do not keep. A GPU run that falls back to
  the unfused ("math") kernel needs more.

Not counted: the CUDA context and workspaces (the plan keeps ``headroom_gib`` of hardware.yaml free)
and the transient buffers of the backward pass. Results are cached on disk like FLOPs counts.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from hut import flops
from hut.activations import SavedTensors
from hut.build import build, default_kind
from hut.files.atomic import write_json_atomic

SEQS = (16, 32, 64)  # the short lengths measured (exact quadratic fit through three points)
LAYERS = (2, 3)  # two depths: what one more layer adds (2, not 1: ft_top2 trains the top two layers)
#: attention-dropout keys of Hugging Face configs (BERT/RoBERTa, GPT-2, Llama): set to 0 in the measured
#: copies so that the CPU takes its fused attention kernel, which keeps O(length) per head as a GPU's
#: fused kernels (flash / memory-efficient, dropout fused, no mask kept) do; the CPU's unfused path
#: keeps the length² probabilities and its dropout mask.
ATTENTION_DROPOUT = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def state_bytes(params: Mapping[str, int]) -> dict[str, int]:
    """Weights, gradients and AdamW moments, from :func:`hut.methods.count_parameters`' counts."""
    return {"weights": 4 * int(params["total"]), "gradients": 4 * int(params["trainable"]),
            "adamw": 8 * int(params["trainable"])}


def _saved_bytes(model, kind: str, seq: int, precision: str) -> int:
    ids = torch.full((1, seq), 5, dtype=torch.long)
    batch: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch["labels"] = ids.clone() if kind == "generation" else (
        torch.zeros(1) if kind == "regression" else torch.zeros(1, dtype=torch.long))
    cast = (torch.autocast("cpu", dtype=AUTOCAST[precision]) if precision in AUTOCAST
            else contextlib.nullcontext())
    with SavedTensors(model.parameters()) as saved, cast:
        loss = model(**batch).loss
    del loss
    return saved.bytes


def _measure(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any], precision: str) -> dict:
    """Saved bytes at batch 1 for the depths :data:`LAYERS` × the lengths :data:`SEQS`."""
    kind = default_kind(model_cfg)
    out = {}
    for layers in LAYERS:
        cfg = copy.deepcopy(dict(model_cfg))
        cfg["arch"] = {**cfg["arch"], flops.layer_key(cfg["arch"]): layers, **dict.fromkeys(ATTENTION_DROPOUT, 0.0)}
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            model = build(cfg, dict(method_cfg), kind, pretrained=False, with_tokenizer=False).model
            model.train()
            out[layers] = [_saved_bytes(model, kind, s, precision) for s in SEQS]
    return out


def _quadratic(ys: list[int]):
    """The quadratic through (SEQS[i], ys[i]) (Lagrange form), as a function of the length."""
    xs = SEQS

    def f(x: float) -> float:
        total = 0.0
        for i, (xi, yi) in enumerate(zip(xs, ys)):
            term = float(yi)
            for j, xj in enumerate(xs):
                if j != i:
                    term *= (x - xj) / (xi - xj)
            total += term
        return total

    return f


def _cache_path(key: str) -> Path:
    return flops.cache_dir().parent / "plan" / f"{key}.json"


def activations(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any], precision: str) -> dict:
    """The measured points (cached on disk by configs, precision, torch and code)."""
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    key = hashlib.sha256(json.dumps([flops.canonical(model_cfg), flops.canonical(method_cfg), precision,
                                     list(SEQS), flops.code_digest(), code]).encode()).hexdigest()[:32]
    path = _cache_path(key)
    try:
        return {int(k): v for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        pass
    pts = _measure(model_cfg, method_cfg, precision)
    try:
        write_json_atomic(path, pts)
    except OSError:
        pass
    return pts


def activation_bytes(points: Mapping[int, list[int]], layers: int, batch: int, seq: int) -> float:
    """Saved bytes at ``layers`` × ``batch`` × ``seq`` from the measured points.

    Per part (one layer; the rest), the fitted quadratic's constant term is what does not grow with
    the tokens (autocast's bf16 copies of the weights: once per step, whatever the batch); the rest
    grows with the batch.
    """
    lo, hi = LAYERS
    per_layer = [b - a for a, b in zip(points[lo], points[hi])]
    rest = [a - lo * p for a, p in zip(points[lo], per_layer)]
    total = 0.0
    for ys, n in ((rest, 1), (per_layer, layers)):
        f = _quadratic(ys)
        const = f(0.0)
        total += n * (const + batch * (f(seq) - const))
    return total


def layers_of(model_cfg: Mapping[str, Any]) -> int:
    return int(model_cfg["arch"][flops.layer_key(model_cfg["arch"])])
