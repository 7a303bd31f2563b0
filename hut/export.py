"""Save/load only the trained parameters, load a finished run back, export a merged model.

* :func:`load_run`: a finished run's trained model from its folder (every successful run of the
  trainer writes ``trainable.safetensors`` beside its ``metrics.json``).

* :func:`save_trainable` / :func:`load_trainable`: the parameters with ``requires_grad`` (the method's
  adapters and the task head), by name, in one safetensors file, with the identity of the base
  model they were trained on (:func:`base_digest` of its frozen embeddings, the model's name and its
  weights' SHA-256). Load them into a model prepared the same way (same model config, same method
  config): ``prepare_model`` then ``load_trainable``; a base model with other weights is refused.
* :func:`export_merged`: fold a mergeable method into the weights (``Method.merge``), check that only
  stock torch/transformers modules remain, and ``save_pretrained`` the result with its tokenizer, so
  that ``AutoModelFor....from_pretrained(dir)`` and ``AutoTokenizer.from_pretrained(dir)`` give the
  adapted model's outputs with no hut code.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save

from hut.build import build
from hut.files.atomic import write_atomic
from hut.runs.record import read_record
from hut.runtime.seed import seed_everything
from hut.tasks import task_info

TRAINABLE_FILE = "trainable.safetensors"

# Llama-style configs switch biases on per group of projections; a merged HUT layer has a bias
# (its shift β) even where the frozen projection had none.
_BIAS_FLAGS = {
    "attention_bias": r"(^|\.)self_attn\.(q|k|v|o)_proj$",
    "mlp_bias": r"(^|\.)mlp\.(gate|up|down)_proj$",
}


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """name -> detached CPU copy of every trainable parameter."""
    return {n: p.detach().to("cpu").clone().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def base_digest(model: nn.Module) -> str | None:
    """16 hex digits naming the base model a prepared model was built on: the shape, dtype and 256
    evenly spaced values of its frozen input embeddings (the one base tensor every method leaves
    frozen and under its own name; two different pretrained or random models differ in it). None
    when the embeddings train (full fine-tuning saves them with the trained parameters)."""
    get = getattr(model, "get_input_embeddings", None)
    weight = getattr(get(), "weight", None) if callable(get) else None
    if weight is None or weight.requires_grad:
        return None
    flat = weight.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // 256)][:256].to("cpu", torch.float32)
    h = hashlib.sha256(f"{tuple(weight.shape)}|{weight.dtype}|".encode() + sample.numpy().tobytes())
    return h.hexdigest()[:16]


def base_model_label(model_cfg: Mapping[str, Any], weights: Mapping[str, Any] | None) -> str:
    """How a run's base model is named in ``trainable.safetensors`` and its errors: the model config's
    name and, for pretrained weights, their SHA-256 (``hut.models.weights_identity``)."""
    name = str(model_cfg.get("name"))
    return f"{name} (weights sha256 {weights['sha256'][:16]})" if weights else f"{name} (built from config)"


def save_trainable(model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the trainable parameters to ``path`` (a ``.safetensors`` file, or a folder), with the
    ``base_digest`` of the base model they were trained on (and ``metadata``, e.g. ``base_model``:
    its name and weights' SHA-256)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / TRAINABLE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = trainable_state_dict(model)
    if not tensors:
        raise ValueError("the model has no trainable parameters to save")
    meta = {"format": "pt"}
    if (digest := base_digest(model)) is not None:
        meta["base_digest"] = digest
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    write_atomic(path, save(tensors, metadata=meta))
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if path.is_dir():
        path = path / TRAINABLE_FILE
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_trainable(model: nn.Module, path: str | Path, strict: bool = True, base: str | None = None) -> dict[str, list[str]]:
    """Copy saved trainable parameters into ``model`` (prepared with the same method).

    Returns ``{"missing": [...], "unexpected": [...]}`` (trainable parameters of ``model`` absent from
    the file, and names in the file that ``model`` lacks). With ``strict`` either is an error, as is
    a shape mismatch. Trained on another base model (``base_digest``) is always an
    error naming both (``base``: how to name ``model``'s base in it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRAINABLE_FILE
    meta = read_metadata(path)
    if meta.get("base_digest") and (mine := base_digest(model)) not in (None, meta["base_digest"]):
        trained_on = meta.get("base_model") or "a base model"
        raise ValueError(f"{path} was trained on {trained_on} (base digest {meta['base_digest']}); this model's "
                         f"base{' (' + base + ')' if base else ''} is {mine}: another base model. Load it into the model it was trained on "
                         f"(hut.export.load_run builds it from the run's record)")
    saved = load_file(str(path))
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    unexpected = sorted(n for n in saved if n not in params)
    missing = sorted(n for n in trainable if n not in saved)
    if strict and (missing or unexpected):
        raise ValueError(f"trainable parameters do not match {path}: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''} (same method config?)")
    with torch.no_grad():
        for n, t in saved.items():
            if n not in params:
                continue
            p = params[n]
            if p.shape != t.shape:
                raise ValueError(f"{n}: saved shape {tuple(t.shape)} != model shape {tuple(p.shape)}")
            p.copy_(t.to(dtype=p.dtype, device=p.device))
    return {"missing": missing, "unexpected": unexpected}


def _is_stock(m: nn.Module) -> bool:
    mod = type(m).__module__
    return mod.startswith("torch.") or mod.startswith("transformers.")


def _check_stock(model: nn.Module) -> None:
    bad = {type(m).__qualname__: getattr(m, "export_hint", "") for m in model.modules() if not _is_stock(m)}
    if bad:
        hints = "; ".join(h for h in dict.fromkeys(bad.values()) if h)
        raise ValueError(f"merged model still contains non-stock modules: {', '.join(sorted(bad))}"
                         + (f" ({hints})" if hints else ""))


def _fix_bias_flags(model: nn.Module) -> None:
    """Where merging added a bias to a projection the config declares bias-free, switch the config
    flag on and give the group's other projections zero biases, so from_pretrained builds them."""
    config = getattr(model, "config", None)
    if config is None:
        return
    for flag, pattern in _BIAS_FLAGS.items():
        if not hasattr(config, flag) or getattr(config, flag):
            continue
        mods = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and re.search(pattern, n)]
        if not any(m.bias is not None for _, m in mods):
            continue
        for _, m in mods:
            if m.bias is None:
                w = m.weight
                m.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device), requires_grad=False)
        setattr(config, flag, True)


def merged_copy(model: nn.Module, method, inplace: bool = False) -> nn.Module:
    """The model with ``method`` folded into stock modules (a deep copy unless ``inplace``)."""
    if not getattr(method, "mergeable", False):
        raise NotImplementedError(f"method '{getattr(method, 'name', method)}' cannot be merged")
    m = model if inplace else copy.deepcopy(model)
    kwargs = {"keep_original": False} if "keep_original" in inspect.signature(method.merge).parameters else {}
    m = method.merge(m, **kwargs)
    _check_stock(m)
    _fix_bias_flags(m)
    return m


def export_merged(model: nn.Module, method, out_dir: str | Path, tokenizer, inplace: bool = False) -> Path:
    """Merge ``method`` into the weights and ``save_pretrained`` a stock transformers model and its tokenizer.

    ``tokenizer`` is required (``run.tokenizer``): a folder without one makes ``AutoTokenizer`` build
    a wrong tokenizer from the model config alone, and the model predicts from wrong ids without a
    word. ``None`` exports the weights only, for a caller who ships the tokenizer itself.
    """
    out = Path(out_dir)
    merged = merged_copy(model, method, inplace=inplace)
    for p in merged.parameters():
        p.requires_grad_(False)
    merged.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


# --------------------------------------------------------------------------------------------------
# A finished run, loaded back
# --------------------------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    model: nn.Module  # the trained model (eval mode): frozen weights as the run loaded them, its parameters
    tokenizer: Any
    method: Any  # the run's Method (merge it with export_merged(run.model, run.method, dir, run.tokenizer))
    record: dict  # the run's metrics.json


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """The trained model of a finished run, from its folder (``metrics.json`` + ``trainable.safetensors``).

    Builds the model as the trainer built it, from the record's resolved config (the same seed, so a
    model built from config gets the same frozen weights; a pretrained one loads from its source),
    applies the method, and loads the trained parameters (strict: the same names and shapes)::

        from hut.export import load_run
        run = load_run("results/runs/table1/rte/hut/roberta_large/seed=0")
        logits = run.model(**run.tokenizer("a sentence", return_tensors="pt")).logits
    """
    run_dir = Path(run_dir)
    rec = read_record(run_dir / "metrics.json")
    if rec.get("status") != "success" or not (run_dir / TRAINABLE_FILE).exists():
        raise ValueError(f"{run_dir}: not a finished run with its trained parameters (status "
                         f"{rec.get('status')!r}, {TRAINABLE_FILE} {'present' if (run_dir / TRAINABLE_FILE).exists() else 'missing'})")
    saved = read_metadata(run_dir)
    if rec.get("fingerprint") and saved.get("fingerprint") != rec["fingerprint"]:
        raise ValueError(f"{run_dir}: {TRAINABLE_FILE} belongs to another config (fingerprint {saved.get('fingerprint')} "
                         f"!= the record's {rec['fingerprint']})")
    cfg = rec["config"]
    seed_everything(int(cfg["seed"]))
    kind, num_labels = task_info(cfg["task"]["name"])
    adapted = build(cfg["model"], cfg["method"], kind, num_labels)
    load_trainable(adapted.model, run_dir, base=base_model_label(cfg["model"], rec.get("weights")))
    return LoadedRun(adapted.model.to(device).eval(), adapted.tokenizer, adapted.method, rec)
