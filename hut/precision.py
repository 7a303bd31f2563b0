"""Does a method's update survive bf16/fp16 autocast? ``python -m hut.precision [dtype=bf16] [methods=[...]] [device=cpu]``.

Under autocast, a value that a small parameter update should move can be rounded back to where it
was: a scale cast to bf16 is exactly 1.0 for |a - 1| < 2^-9, and a float scale applied to an
activation that is already on the bf16 grid rounds back to the same grid point. The model then
trains parameters that its forward cannot see. This module measures it, for any registered method,
on a small model built from config (random weights, no download):

    share = <Δ_low, Δ_32> / <Δ_32, Δ_32>

where Δ is the change of the last transformer block's output caused by the update, computed in
float32 (Δ_32) and under autocast (Δ_low): the share of the float32 change that survives. 1 means
the update is fully seen, 0 that it is lost. Two regimes:

* ``start``: the method as initialised, every trainable parameter (task head excluded) multiplied
  by 1.001: the first updates of training. For a method whose parameters start at one value (HUT's
  and IA3's scales at 1) this is where rounding bites: 1.001 is under half a bf16 step of 1. A
  method whose initial update cannot change the output (LoRA's A while B = 0) has no share here
  (reported as ``None``).
* ``trained``: every trainable parameter first moved as training would (by 10 % of its rms, or,
  where it starts at zero, to an rms of 3/sqrt(fan-in)), then multiplied by 1.01. A 1 % update: at
  1e-3 the change of an additive method is below the output's own rounding noise and the estimate is
  noise; :func:`survival` also returns the cosine between Δ_low and Δ_32, which says how noisy a
  share is.

The model's biases are drawn from N(0, 0.05²) as in a pretrained model (a random model's are 0,
which would leave BitFit with nothing to scale), dropout is off, eval mode.
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from hut.build import adapt, load_base
from hut.config import cli_options, load_group
from hut.methods import METHODS, is_head
from hut.methods.full import transformer_blocks
from hut.results.render.formats import markdown as md_table
from hut.runtime.device import DeviceUnavailable, resolve

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FAMILIES = ("bert", "gpt2")
REGIMES = {"start": 1e-3, "trained": 1e-2}  # regime -> the relative update

# Small real architectures (width 256, 2 layers): enough output elements for a stable estimate.
ARCHS: dict[str, dict[str, Any]] = {
    "bert": {"model_type": "roberta", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 512, "max_position_embeddings": 130,
             "type_vocab_size": 1, "pad_token_id": 0, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "gpt2": {"model_type": "gpt2", "vocab_size": 1000, "n_embd": 256, "n_layer": 2, "n_head": 4, "n_positions": 128,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "bos_token_id": 0, "eos_token_id": 0},
}
HEAD = ("classifier",)


@dataclass
class Prepared:
    model: nn.Module
    family: str
    head_prefixes: tuple[str, ...]
    ids: torch.Tensor

    @property
    def device(self) -> str:
        return self.ids.device.type


def prepare(method: str | dict, family: str, seed: int = 0, batch: int = 32, seq: int = 64,
            device: str = "cpu") -> Prepared:
    """The small ``family`` model with ``method`` applied (its yaml, or a config dict), eval mode."""
    torch.manual_seed(seed)
    lm = load_base({"name": f"small_{family}", "source": "config", "arch": ARCHS[family],
                    "head_prefixes": list(HEAD)}, pretrained=False, with_tokenizer=False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in lm.model.named_parameters():
            if n.endswith("bias"):
                p.normal_(0.0, 0.05, generator=g)
    adapted = adapt(lm, load_group("method", method) if isinstance(method, str) else dict(method))
    model = adapted.model.eval().to(device)
    ids = torch.randint(5, ARCHS[family]["vocab_size"], (batch, seq), generator=g)
    return Prepared(model, adapted.family, adapted.head_prefixes, ids.to(device))


def method_parameters(p: Prepared, model: nn.Module | None = None) -> list[nn.Parameter]:
    """The trainable parameters of the method (the task head excluded)."""
    model = model if model is not None else p.model
    return [q for n, q in model.named_parameters() if q.requires_grad and not is_head(n, p.head_prefixes)]


class _Stop(Exception):
    """Raised by the hook on the last block: nothing after it (LM head, classifier) needs computing."""


def _last_block_output(p: Prepared, model: nn.Module, dtype: torch.dtype | None) -> torch.Tensor:
    """Run ``model`` up to its last transformer block (autocast to ``dtype``; None: float32)."""
    _, blocks = transformer_blocks(model, p.family)
    box: dict[str, torch.Tensor] = {}

    def grab(module, args, out):
        box["h"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    hook = blocks[-1].register_forward_hook(grab)
    try:
        with torch.autocast(p.device, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            model(input_ids=p.ids)
    except _Stop:
        pass
    finally:
        hook.remove()
    return box["h"].float()


def block_output(p: Prepared, model: nn.Module, dtype: torch.dtype | None) -> torch.Tensor:
    """The last transformer block's output (float32), under autocast to ``dtype`` (None: float32)."""
    with torch.no_grad():
        return _last_block_output(p, model, dtype)


def move_as_trained(p: Prepared, seed: int = 3) -> None:
    """Move every method parameter off its init, as some training would (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in method_parameters(p):
            z = torch.randn(q.shape, generator=g, dtype=q.dtype).to(q.device)
            rms = float(q.pow(2).mean().sqrt())
            if rms > 0:
                q.add_(0.1 * rms * z)
            else:  # a zero-initialised tensor (LoRA's B, an adapter's up-projection, VeRA's Λ_b)
                q.add_((3.0 / math.sqrt(q.shape[-1]) if q.dim() > 1 else 0.3) * z)


def survival(p: Prepared, update: Callable[[nn.Parameter], None], dtype: torch.dtype) -> tuple[float | None, float]:
    """(share, cosine) of the output change caused by ``update`` (applied to a copy of the model)."""
    after = copy.deepcopy(p.model)
    with torch.no_grad():
        for q in method_parameters(p, after):
            update(q)
    before32 = block_output(p, p.model, None)
    d32 = block_output(p, after, None) - before32
    dlo = block_output(p, after, dtype) - block_output(p, p.model, dtype)
    n32 = float(d32.pow(2).sum())
    if n32 < 1e-12 * float(before32.pow(2).sum()):
        return None, float("nan")  # the update does not change the float32 output: nothing to survive
    cos = float((dlo * d32).sum() / (d32.norm() * dlo.norm()).clamp_min(1e-30))
    return float((dlo * d32).sum()) / n32, cos


# Tokens per measurement (batch, length): bf16's coarse grid needs many output elements for a stable
# share; fp16 (three more mantissa bits) needs fewer, and CPU fp16 matmuls are ~100x slower than bf16.
TOKENS = {torch.bfloat16: (32, 64), torch.float16: (8, 32)}


def shares(method: str | dict, family: str, dtype: torch.dtype,
           device: str = "cpu") -> dict[str, tuple[float | None, float]]:
    """regime -> (share, cosine) for one method on one model family."""
    out = {}
    batch, seq = TOKENS[dtype]
    for regime, eps in REGIMES.items():
        p = prepare(method, family, batch=batch, seq=seq, device=device)
        if regime == "trained":
            move_as_trained(p)
        out[regime] = survival(p, lambda q, e=eps: q.mul_(1.0 + e), dtype)
    return out


def gradients(p: Prepared, dtype: torch.dtype | None, seed: int = 5) -> list[torch.Tensor]:
    """Gradients of the method's parameters of a fixed random projection of the block output."""
    for q in p.model.parameters():
        q.grad = None
    h = _last_block_output(p, p.model, dtype)
    w = torch.randn(h.shape, generator=torch.Generator().manual_seed(seed)).to(h.device)
    (h * w).sum().backward()
    return [q.grad.detach().clone() if q.grad is not None else torch.zeros_like(q) for q in method_parameters(p)]


def main(argv: Sequence[str] | None = None) -> int:
    args = cli_options(sys.argv[1:] if argv is None else argv, "precision", "hut.precision")
    if args["dtype"] not in DTYPES:
        raise SystemExit(f"hut.precision: dtype is bf16 or fp16 (got {args['dtype']!r})")
    try:
        device = resolve(args["device"], key="device")
    except (ValueError, DeviceUnavailable) as e:
        raise SystemExit(f"hut.precision: {e}") from None
    dtype = DTYPES[args["dtype"]]
    methods = list(args["methods"] or METHODS.names())
    if bad := [m for m in methods if m not in METHODS.names()]:
        raise SystemExit(f"hut.precision: unknown methods {bad} (methods=); known: {', '.join(METHODS.names())}")
    families = list(args["families"])
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SystemExit(f"hut.precision: unknown families {unknown}; known: {', '.join(FAMILIES)}")
    print(f"share of the float32 output change that survives {args['dtype']} autocast on {device} "
          f"(start: x1.001 at init; trained: x1.01 after moving off init)\n")
    rows = []
    for m in methods:
        cells = []
        for f in families:
            res = shares(m, f, dtype, device)
            cells += ["–" if res[r][0] is None else f"{res[r][0]:.3f}" for r in REGIMES]
        rows.append([m, *cells])
        print(f"measured {m}", file=sys.stderr, flush=True)
    print(md_table(["method", *(f"{f} {r}" for f in families for r in REGIMES)], rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

