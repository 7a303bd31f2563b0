"""What is benchmarked: the real-size models built from config, and each method on them.

* Models: ``configs/model/<name>.yaml``'s ``arch`` with random weights (no download), optionally
  fewer layers (same width) and a smaller vocabulary (tests); every dropout probability set to 0 to
  cut noise (the methods' own dropout too).
* Methods: every registered one by default, each with the settings it runs with in the paper's table
  for that model (a Table 1 row on RoBERTa-large, a Table 3 row on GPT-2 medium: HUT r=8 / r=4 on
  q, v, LoRA r=8 alpha 16 / r=4 alpha 32, ...; for a method with two sizes, the first row), else its
  ``configs/method/<name>.yaml``. ``hut@folded`` is HUT with its layers forced to the folded-weight
  path in float32 too (an alternative measured against the default; see hut/methods/hut/function.py).
* ``floor``: the frozen model with a gradient flowing back through every layer (``requires_grad`` on
  the embeddings' output, :class:`hut.methods.frozen.Frozen`), only the task head training: what any
  method that adapts every layer pays.

The base model is built once (:func:`hut.build.load_base`); every candidate gets its own copy whose
frozen weights share that base's storage, with its method applied (:func:`hut.build.adapt`) and its
own AdamW.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from hut.config import experiments as ex
from hut.build import adapt, default_kind, load_base
from hut.config import load_group
from hut.methods import METHODS, Method, build_method
from hut.methods.frozen import frozen
from hut.methods.hut import hut_layers
from hut.models import LoadedModel

FLOOR = "floor"
PAPER_TABLE = {"roberta_large": "table1", "gpt2_medium": "table3"}  # whose rows give a method's settings
ALTERNATIVES = {"hut@folded": ("hut", "folded")}  # name -> (method, HutLinear path)


def method_config(name: str, model: str) -> dict[str, Any]:
    """The method's config on ``model``: its paper row's where the model's table has one, else its yaml."""
    method = ALTERNATIVES.get(name, (name,))[0]
    table = PAPER_TABLE.get(model)
    cfg = None
    if table:
        for cell in ex.cells(table):
            if cell.config["method"]["name"] == method:
                cfg = dict(cell.config["method"])
                break
    cfg = cfg or load_group("method", method)
    if "dropout" in cfg:  # no dropout anywhere while timing
        cfg["dropout"] = 0.0
    return cfg


def model_config(name: str, layers: int | None, vocab: int | None = None) -> dict[str, Any]:
    cfg = load_group("model", name)
    arch = dict(cfg["arch"])
    depth_key = "num_hidden_layers" if "num_hidden_layers" in arch else "n_layer"
    if layers is not None:
        if not 1 <= layers <= int(arch[depth_key]):
            raise SystemExit(f"hut.bench: layers={layers} but {name} has {arch[depth_key]}")
        arch[depth_key] = layers
    if vocab is not None:
        arch["vocab_size"] = int(vocab)
    cfg["arch"] = arch
    return cfg


def storages(tensors) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        out[st.data_ptr()] = st.nbytes()
    return out


def shared_copy(base: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers share ``base``'s storage (new frozen Parameters)."""
    memo: dict[int, Any] = {}
    for p in base.parameters():
        memo[id(p)] = nn.Parameter(p.data, requires_grad=False)
    for b in base.buffers():
        memo[id(b)] = b
    return copy.deepcopy(base, memo)


def no_dropout(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Dropout) or type(m).__name__.endswith("Dropout"):
            m.p = 0.0


@dataclass(eq=False)  # hashed by identity: a key of the timing tables
class Candidate:
    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    method: Method
    config: Mapping[str, Any]
    error: str | None = None
    mem: dict[str, float] = field(default_factory=dict)


@dataclass
class Base:
    """The frozen base model every candidate shares."""

    name: str
    model: nn.Module
    family: str
    head_prefixes: tuple[str, ...]
    kind: str
    ptrs: dict[int, int]


def build_base(model: str, layers: int | None, vocab: int | None, device: str, seed: int) -> Base:
    cfg = model_config(model, layers, vocab)
    torch.manual_seed(seed)
    lm = load_base(cfg, pretrained=False, with_tokenizer=False)
    base = lm.model.to(device)
    for p in base.parameters():
        p.requires_grad_(False)
    no_dropout(base)
    return Base(model, base, lm.family, tuple(lm.head_prefixes), default_kind(cfg),
                storages(list(base.parameters()) + list(base.buffers())))


def build_candidate(name: str, base: Base) -> Candidate:
    cfg = {"name": FLOOR} if name == FLOOR else method_config(name, base.name)
    method = frozen(grad_to_inputs=True, name=FLOOR) if name == FLOOR else build_method(cfg)
    copied = LoadedModel(shared_copy(base.model), None, base.family, base.head_prefixes, base.name)
    model = adapt(copied, method).model
    for p in model.parameters():  # what a method trains gets its own storage; the base stays untouched
        if p.requires_grad and p.untyped_storage().data_ptr() in base.ptrs:
            p.data = p.data.clone()
    if name in ALTERNATIVES:
        for _, layer in hut_layers(model):
            layer.path = ALTERNATIVES[name][1]
    no_dropout(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01) if params else None
    return Candidate(name, model, opt, method, cfg)


def candidate_names(methods: Sequence[str] | None) -> list[str]:
    names = list(methods) if methods else METHODS.names()
    return [FLOOR] + [n for n in names if n != FLOOR]


def make_batch(base: Base, batch: int, seq: int, device: str, seed: int) -> dict[str, torch.Tensor]:
    vocab = int(base.model.config.vocab_size)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq), generator=g)  # no pad or special ids
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    out["labels"] = ids.clone() if base.kind == "generation" else torch.randint(0, 2, (batch,), generator=g)
    return {k: v.to(device) for k, v in out.items()}
