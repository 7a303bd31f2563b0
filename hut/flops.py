"""FLOPs of the fine-tuning methods: the paper's analytic count and what a training step really costs.

Two different quantities, kept apart everywhere (Table 2 says which is which):

* **Analytic** (the paper's Eq. 10-11): the FLOPs to form the updated weight of one adapted d×k
  matrix, once per optimisation step and independent of the batch,

      HUT   4dk + rd + rk        LoRA   (2r + 1)dk

  For RoBERTa-large with q and v adapted in all 24 layers (48 matrices, d = k = 1024, r = 8) this
  is 0.20 and 0.86 GFLOPs, the figures the paper prints (:func:`paper_setting_gflops`).

* **Measured**: what one step costs on the real-size architecture, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` while the model runs (:func:`measure`). The model is
  built from its config with the method applied exactly as the trainer builds it (``hut.build.build``,
  ``pretrained=False``: no download) on the ``meta`` device, so nothing is computed. Conventions (stated in the table):

  - input: ``BATCH`` × ``SEQ_LEN`` = 1 × 128 tokens; eval mode (dropout off); eager attention (so
    the attention matmuls are counted the same way on every device);
  - *train step* = forward + backward of ``logits.sum()`` (no optimiser step); *inference* = one
    forward under ``no_grad`` with the method unmerged;
  - ``matmul`` FLOPs are FlopCounterMode's (2 per multiply-add: mm, addmm, bmm, convolutions,
    attention kernels); FlopCounterMode does not count elementwise work, so ``elementwise`` counts
    1 FLOP per output element of every ATen op tagged pointwise (copies and casts excluded).
    HUT's own work is almost all elementwise, so both are reported;
  - the *frozen* floor is the same model with every weight frozen and only the task head trained
    (:class:`hut.methods.frozen.Frozen`): "extra" is a method's cost above what training just the
    head already costs.

  A method whose code cannot run on ``meta`` (data-dependent checks, device-type queries) is
  measured on the CPU with real tensors at the real width but 1, 2 and 3 layers; the counts are
  checked to be exactly linear in depth and extrapolated to the real depth (exact for a stack of
  identical layers; ``measured_on`` says so). If they are not linear, the full model is run on the
  CPU. Why it could not run on ``meta`` is kept (``fallback``) and said once per method and model on
  stderr, whether measured now or read from the cache.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from hut.build import build
from hut.config import cli_options, load_group
from hut.data.cache import cache_root
from hut.files.atomic import write_json_atomic
from hut.methods import METHODS

BATCH = 1
SEQ_LEN = 128

# Pointwise ATen ops that move or cast data without arithmetic: not FLOPs.
_NOT_ARITHMETIC = frozenset({
    "clone", "_to_copy", "copy", "copy_", "lift_fresh_copy", "fill", "fill_", "zero_", "zeros_like",
    "ones_like", "empty_like", "full_like", "detach", "alias", "_unsafe_view", "view", "expand",
})


# --------------------------------------------------------------------------------------------------
# Analytic (the paper's Eq. 10-11)
# --------------------------------------------------------------------------------------------------
def hut_matrix_flops(d: int, k: int, r: int) -> int:
    """The paper's count for HUT on one d×k matrix: 4dk + rd + rk."""
    return 4 * d * k + r * d + r * k


def lora_matrix_flops(d: int, k: int, r: int) -> int:
    """The paper's count for LoRA on one d×k matrix: (2r + 1)dk (B·A, then W0 + BA)."""
    return (2 * r + 1) * d * k


ANALYTIC = {
    "hut": ("4dk + rd + rk", hut_matrix_flops),
    "lora": ("(2r+1)dk", lora_matrix_flops),
}

#: The setting of the paper's Table 2: RoBERTa-large, q and v adapted in all 24 layers, r = 8.
PAPER_SETTING = {"model": "roberta_large", "d": 1024, "k": 1024, "r": 8, "layers": 24, "targets": ["q", "v"]}


def analytic_flops(method: str, d: int, k: int, r: int, n_matrices: int) -> int:
    return ANALYTIC[method][1](d, k, r) * n_matrices


def paper_setting_gflops(method: str, setting: Mapping[str, Any] = PAPER_SETTING) -> float:
    """GFLOPs of ``method`` (hut | lora) in the paper's Table 2 setting (0.20 and 0.86)."""
    s = setting
    n = int(s["layers"]) * len(s["targets"])
    return analytic_flops(method, int(s["d"]), int(s["k"]), int(s["r"]), n) / 1e9


# --------------------------------------------------------------------------------------------------
# Measured
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Count:
    matmul: int = 0
    elementwise: int = 0

    def __sub__(self, other: "Count") -> "Count":
        return Count(self.matmul - other.matmul, self.elementwise - other.elementwise)


@dataclass(frozen=True)
class Measurement:
    model: str
    method: str  # "frozen" for the floor
    method_cfg: str  # canonical JSON of the method config
    params: dict = field(default_factory=dict)  # adapter, trainable, total
    train: Count = Count()
    infer: Count = Count()
    mergeable: bool | None = None
    measured_on: str = "meta"
    error: str | None = None
    fallback: str | None = None  # why it was not counted on meta (the error there), when it was not

    def to_dict(self) -> dict:
        return asdict(self)


def _elementwise_mode():
    class ElementwiseCounter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if torch.Tag.pointwise in func.tags and func.overloadpacket.__name__ not in _NOT_ARITHMETIC:
                self.total += sum(t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
            return out

    return ElementwiseCounter()


def count_step(model, input_ids, train: bool) -> Count:
    """FLOPs of one training step (forward + backward of logits.sum()) or one no-grad forward."""
    fc = FlopCounterMode(display=False)
    ew = _elementwise_mode()
    with fc, ew:
        if train:
            logits = model(input_ids=input_ids).logits
            if logits.requires_grad:  # a frozen decoder has nothing to train: forward only
                logits.sum().backward()
        else:
            with torch.no_grad():
                model(input_ids=input_ids)
    return Count(int(fc.get_total_flops()), int(ew.total))


def layer_key(arch: Mapping[str, Any]) -> str:
    for key in ("num_hidden_layers", "n_layer"):
        if key in arch:
            return key
    raise ValueError("model arch has no layer count (num_hidden_layers / n_layer)")


def _count_model_cfg(model_cfg: Mapping[str, Any], layers: int | None = None) -> dict:
    cfg = copy.deepcopy(dict(model_cfg))
    cfg["arch"] = dict(cfg["arch"])
    cfg["arch"]["attn_implementation"] = "eager"
    if layers is not None:
        cfg["arch"][layer_key(cfg["arch"])] = layers
    return cfg


def _build(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any] | None, device: str):
    adapted = build(model_cfg, method_cfg, pretrained=False, with_tokenizer=False, device=device)
    adapted.model.eval()
    return adapted.model, adapted.params


def _measure_on(model_cfg, method_cfg, device: str, batch: int, seq_len: int) -> tuple[dict, Count, Count]:
    model, params = _build(model_cfg, method_cfg, device)
    ids = torch.full((batch, seq_len), 5, dtype=torch.long, device=device)
    infer = count_step(model, ids, train=False)
    train = count_step(model, ids, train=True)
    return params, train, infer


def _extrapolate(model_cfg, method_cfg, batch: int, seq_len: int) -> tuple[dict, Count, Count, str]:
    """CPU, real width, 1/2/3 layers; exact linear extrapolation in depth (checked)."""
    depth = int(model_cfg["arch"][layer_key(model_cfg["arch"])])
    pts = [_measure_on(_count_model_cfg(model_cfg, n), method_cfg, "cpu", batch, seq_len) for n in (1, 2, 3)]

    def flat(p):
        params, train, infer = p
        return [params["adapter"], params["trainable"], params["total"],
                train.matmul, train.elementwise, infer.matmul, infer.elementwise]

    v1, v2, v3 = (flat(p) for p in pts)
    if any(b - a != c - b for a, b, c in zip(v1, v2, v3)):  # not a stack of identical layers
        params, train, infer = _measure_on(_count_model_cfg(model_cfg), method_cfg, "cpu", batch, seq_len)
        return params, train, infer, "cpu (full model)"
    f = [a + (depth - 1) * (b - a) for a, b in zip(v1, v2)]
    params = {"adapter": f[0], "trainable": f[1], "total": f[2]}
    return params, Count(f[3], f[4]), Count(f[5], f[6]), f"cpu (real width; 1-3 layers, extrapolated to {depth})"


def canonical(cfg: Mapping[str, Any] | None) -> str:
    return json.dumps(cfg, sort_keys=True, default=str)


_CACHE: dict[tuple, Measurement] = {}
#: What a count depends on besides its configs: the code that builds and counts the model.
_CODE = ("flops.py", "build.py", "models.py", "methods")


def cache_dir() -> Path:
    """Measured counts, one JSON file per (configs, sizes, torch, code) digest: ``<cache_root>/flops``."""
    return cache_root() / "flops"


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    root = Path(__file__).resolve().parent
    for name in _CODE:
        for f in sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / name]:
            h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def _disk_path(key: tuple) -> Path:
    return cache_dir() / (hashlib.sha256(json.dumps([*key, code_digest()]).encode()).hexdigest()[:32] + ".json")


def _from_disk(key: tuple) -> Measurement | None:
    """A count measured before by the same code for the same configs and sizes (a bad file is a miss)."""
    try:
        d = json.loads(_disk_path(key).read_text(encoding="utf-8"))
        return Measurement(**{**d, "train": Count(**d["train"]), "infer": Count(**d["infer"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def measure(model_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any] | None,
            batch: int = BATCH, seq_len: int = SEQ_LEN) -> Measurement:
    """Measured FLOPs of one method (``method_cfg=None``: the frozen floor) on a model config.

    Deterministic; cached per process and on disk (:func:`cache_dir`, keyed by the configs, the sizes,
    the torch version and the counting code), so a second ``hut.aggregate`` measures nothing new.
    Errors are returned in ``error``, never raised (nor cached on disk).
    """
    key = (canonical(model_cfg), canonical(method_cfg), batch, seq_len)
    if key in _CACHE:
        return _CACHE[key]
    if (m := _from_disk(key)) is not None:
        _CACHE[key] = m
        _say_fallback(m)
        return m
    name = "frozen" if method_cfg is None else str(method_cfg.get("name"))
    mergeable = None
    if method_cfg is not None:
        try:
            mergeable = bool(getattr(METHODS.get(name), "mergeable", False))
        except KeyError:  # unknown method: reported below
            pass
    base = dict(model=str(model_cfg.get("name")), method=name, method_cfg=canonical(method_cfg), mergeable=mergeable)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        fallback = None
        try:
            params, train, infer = _measure_on(_count_model_cfg(model_cfg), method_cfg, "meta", batch, seq_len)
            how = "meta"
        except Exception as e:  # noqa: BLE001  not meta-compatible: real tensors, real width, extrapolated depth
            fallback = _first_line(e)
            try:
                params, train, infer, how = _extrapolate(model_cfg, method_cfg, batch, seq_len)
            except Exception as e:  # noqa: BLE001
                m = Measurement(**base, measured_on="failed", error=_first_line(e), fallback=fallback)
                _CACHE[key] = m
                return m
    m = Measurement(**base, params=dict(params), train=train, infer=infer, measured_on=how, fallback=fallback)
    _CACHE[key] = m
    _say_fallback(m)
    try:  # errors are not cached on disk; a read-only cache only costs the re-measuring
        write_json_atomic(_disk_path(key), m.to_dict())
    except OSError:
        pass
    return m


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"


_SAID: set[tuple[str, str]] = set()


def _say_fallback(m: Measurement) -> None:
    """Once per (model, method) in a process: that and why the count was not made on ``meta``."""
    if m.fallback and (m.model, m.method) not in _SAID:
        _SAID.add((m.model, m.method))
        print(f"[flops] {m.method} on {m.model}: counted on {m.measured_on}, not on meta ({m.fallback})",
              file=sys.stderr)


def registered_methods() -> list[str]:
    return METHODS.names()


def measure_all(model: str = "roberta_large", methods: list[str] | None = None,
                batch: int = BATCH, seq_len: int = SEQ_LEN) -> list[Measurement]:
    """The frozen floor, then every method (default: all registered) with configs/method/<name>.yaml."""
    model_cfg = load_group("model", model)
    out = [measure(model_cfg, None, batch, seq_len)]
    for name in methods if methods is not None else registered_methods():
        try:
            cfg = load_group("method", name)
        except ValueError:
            cfg = {"name": name}
        out.append(measure(model_cfg, cfg, batch, seq_len))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hut.flops [model=roberta_large]``: print the measured counts as JSON lines."""
    args = cli_options(sys.argv[1:] if argv is None else argv, "flops", "hut.flops")
    for m in measure_all(args["model"]):
        print(json.dumps(m.to_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
