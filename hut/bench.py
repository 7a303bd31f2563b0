"""Cost benchmark: training-step time and memory of every method against the frozen-model floor.

    python -m hut.bench [preset=quick|full|test] [device=cpu|cuda] [methods=hut,lora] [models=roberta_large]
                        [out=results/bench] [rounds=N] [warmup=N] [threads=N] [batch=N] [seq=N] [layers=N]

Writes ``<out>/<preset>-<device>.json`` and ``<out>/<preset>-<device>.md`` and prints the table.

What is measured (see ``NOTES`` below, also written into the JSON):

* Models are the paper's real-size architectures built from ``configs/model/*.yaml`` ``arch`` with
  random weights (no download): RoBERTa-large (sequence classification, 2 labels) and GPT-2 medium
  (causal LM). ``quick`` keeps the width and cuts the depth; ``full`` is the whole model.
* **floor**: the frozen model with gradients flowing through every layer (``requires_grad`` on the
  output of the input embeddings; no weight gradients in the body; the task head trains, as under
  every method). A method that adapts every layer cannot beat it by more than the first layer's
  input-gradient work.
* One process; every method gets its own model sharing the frozen base weights (parameters that a
  method trains are cloned first); methods are interleaved round-robin (the start rotates each
  round), the warm-up rounds are discarded and the median step over the remaining rounds is reported.
  A step is forward + backward + AdamW step + ``zero_grad(set_to_none=True)``; the same input batch for
  every method; ``model.train()`` with every dropout probability set to 0 (LoRA's dropout too), to cut
  noise; Python's garbage collector off while timing.
* Memory. ``saved_activations_mb``: the unique storages of the tensors autograd saves for backward
  during one forward (``torch.autograd.graph.saved_tensors_hooks``), parameters and buffers excluded,
  i.e. activation memory. On CPU (no allocator counter) ``peak_mem_mb`` is a *modelled* peak: model
  weights (unique storages) + gradients of the trainable parameters + AdamW state + saved activations
  (transient workspace not included). On CUDA ``peak_mem_mb`` is measured: the rise of
  ``torch.cuda.max_memory_allocated`` during one step (after ``reset_peak_memory_stats``) plus this
  method's resident weights and optimizer state (other methods' models are resident too and are not
  counted); CUDA runs use bf16 autocast and CUDA-event timing.
* Inference: forward latency (``inference_mode``, ``eval()``) of the base model, of HUT merged into
  stock modules, and of unmerged HUT (and LoRA unmerged) for contrast, interleaved, median.
"""
from __future__ import annotations

import copy
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn

from hut.methods.base import Method, build_method, merge_model, prepare_model

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
MIB = float(2**20)

FLOOR = "floor"
ALL_METHODS = ["floor", "hut", "hut_compact", "lora", "vera", "fourierft", "ia3", "bitfit",
               "hadapter", "padapter", "ladapter", "ft"]

# Per model: task kind and the method settings that differ by model (the paper's ranks: r=8 on
# RoBERTa-large GLUE, r=4 on GPT-2 medium E2E, q and v for HUT and LoRA).
MODELS: dict[str, dict[str, Any]] = {
    "roberta_large": {"kind": "classification", "depth_key": "num_hidden_layers",
                      "dropout_keys": ["hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"],
                      "method_overrides": {"hut": {"r": 8}, "lora": {"r": 8, "alpha": 16}}},
    "gpt2_medium": {"kind": "generation", "depth_key": "n_layer",
                    "dropout_keys": ["resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout"],
                    "method_overrides": {"hut": {"r": 4}, "lora": {"r": 4, "alpha": 32}}},
}
# Every method: no dropout inside the method either (timing noise), whatever its yaml says.
COMMON_OVERRIDES: dict[str, dict[str, Any]] = {"lora": {"dropout": 0.0}, "vera": {"dropout": 0.0}}

PRESETS: dict[str, dict[str, Any]] = {
    # The test-suite size: one layer of the real width, a tiny batch and vocabulary, two timed rounds.
    "test": {"layers": 1, "batch": 1, "seq": 16, "rounds": 2, "warmup": 1, "infer_rounds": 2, "vocab": 1024,
             "methods": ["floor", "hut", "lora"], "models": ["roberta_large", "gpt2_medium"]},
    # Minutes on 2 CPU cores: 4 of 24 layers at full width (1024), batch 2 x 64 tokens.
    "quick": {"layers": 4, "batch": 2, "seq": 64, "rounds": 9, "warmup": 1, "infer_rounds": 10,
              "methods": ALL_METHODS, "models": ["roberta_large", "gpt2_medium"]},
    # The real models: 24 layers, batch 8 x 128 tokens.
    "full": {"layers": None, "batch": 8, "seq": 128, "rounds": 5, "warmup": 1, "infer_rounds": 5,
             "methods": ALL_METHODS, "models": ["roberta_large", "gpt2_medium"]},
}

GOAL_STEP_VS_FLOOR_PCT = 3.0  # HUT's training step within +3 % of the floor
GOAL_MERGED_PCT = 2.0  # merged inference "equal" to the base: within +2 % (timing noise band)

NOTES = {
    "floor": "frozen model, requires_grad on the input-embedding output: activation gradients through every "
             "layer, no weight gradients in the body; the task head trains as under every method",
    "train_step_s": "median over timed rounds of forward + backward + AdamW step + zero_grad; methods "
                    "interleaved round-robin in one process, warm-up rounds discarded",
    "dropout": "model.train() with every dropout probability 0 (model config and method dropout) to cut noise",
    "saved_activations_mb": "unique storages saved by autograd for backward in one forward "
                            "(saved_tensors_hooks), parameters and buffers excluded; MiB",
    "extra_act_mb": "saved_activations_mb minus the floor's",
    "peak_mem_mb_cpu": "modelled peak (no CPU allocator counter): weights (unique) + trainable gradients + "
                       "AdamW state + saved activations; MiB; transient workspace not included",
    "peak_mem_mb_cuda": "measured: rise of torch.cuda.max_memory_allocated over one step + this method's "
                        "resident weights and optimizer state; MiB",
    "inference": "forward latency in eval()/inference_mode, variants interleaved, median; merged = HUT folded "
                 "into stock Linear/Conv1D modules",
}


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------
def _split_list(v: str) -> list[str]:
    return [x.strip() for x in v.replace("[", "").replace("]", "").split(",") if x.strip()]


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    """``key=value`` arguments -> settings (preset defaults filled in)."""
    raw: dict[str, str] = {}
    for a in argv:
        if a in ("-h", "--help"):
            print(__doc__)
            raise SystemExit(0)
        if "=" not in a:
            raise SystemExit(f"hut.bench: arguments are key=value (got {a!r}); see python -m hut.bench --help")
        k, v = a.split("=", 1)
        raw[k.strip().lstrip("+")] = v.strip()
    known = {"preset", "device", "methods", "models", "out", "rounds", "warmup", "threads", "batch", "seq",
             "layers", "infer_rounds", "seed", "vocab"}
    bad = sorted(set(raw) - known)
    if bad:
        raise SystemExit(f"hut.bench: unknown argument(s) {bad}; known: {', '.join(sorted(known))}")
    preset = raw.get("preset", "quick")
    if preset not in PRESETS:
        raise SystemExit(f"hut.bench: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    s: dict[str, Any] = dict(PRESETS[preset])
    s["preset"] = preset
    s["device"] = raw.get("device", "cpu")
    if s["device"] not in ("cpu", "cuda"):
        raise SystemExit(f"hut.bench: device must be cpu or cuda (got {s['device']!r})")
    if s["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("hut.bench: device=cuda but torch.cuda.is_available() is False")
    if "methods" in raw:
        ms = _split_list(raw["methods"])
        if FLOOR not in ms:  # ratios need the floor
            ms = [FLOOR] + ms
        s["methods"] = ms
    if "models" in raw:
        s["models"] = _split_list(raw["models"])
    bad_models = [m for m in s["models"] if m not in MODELS]
    if bad_models:
        raise SystemExit(f"hut.bench: unknown model(s) {bad_models}; choose from {', '.join(MODELS)}")
    for k in ("rounds", "warmup", "threads", "batch", "seq", "layers", "infer_rounds", "seed", "vocab"):
        if k in raw:
            try:
                s[k] = int(raw[k])
            except ValueError:
                raise SystemExit(f"hut.bench: {k} must be an integer (got {raw[k]!r})") from None
    if s["rounds"] < 1 or s["warmup"] < 0:
        raise SystemExit("hut.bench: rounds must be >= 1 and warmup >= 0")
    s.setdefault("threads", _default_threads())
    s.setdefault("seed", 0)
    s.setdefault("vocab", None)
    s["out"] = raw.get("out", str(Path("results") / "bench"))
    return s


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------
# Models and methods
# --------------------------------------------------------------------------------------------------
def _load_yaml(path: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def model_config(name: str, layers: int | None, vocab: int | None = None) -> dict:
    """The model's config with ``layers`` blocks (None = all), no dropout, and (tests only) a smaller
    vocabulary."""
    cfg = _load_yaml(CONFIGS / "model" / f"{name}.yaml")
    spec = MODELS[name]
    arch = dict(cfg["arch"])
    if vocab is not None:
        arch["vocab_size"] = int(vocab)
    if layers is not None:
        full = int(arch[spec["depth_key"]])
        if not 1 <= layers <= full:
            raise SystemExit(f"hut.bench: layers={layers} but {name} has {full}")
        arch[spec["depth_key"]] = layers
    for k in spec["dropout_keys"]:
        arch[k] = 0.0
    cfg["arch"] = arch
    return cfg


def method_config(name: str, model_name: str) -> dict:
    cfg = _load_yaml(CONFIGS / "method" / f"{name}.yaml")
    cfg.update(COMMON_OVERRIDES.get(name, {}))
    cfg.update(MODELS[model_name]["method_overrides"].get(name, {}))
    return cfg


def _require_grad_hook(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor | None:
    if torch.is_grad_enabled() and isinstance(out, torch.Tensor) and not out.requires_grad:
        return out.requires_grad_(True)
    return None


class FloorMethod(Method):
    """The frozen model, with activation gradients from the top to the input embeddings (not registered)."""

    name = FLOOR

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        model.get_input_embeddings().register_forward_hook(_require_grad_hook)
        return model


def _storages(tensors) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        out[st.data_ptr()] = st.nbytes()
    return out


def shared_copy(base: nn.Module) -> nn.Module:
    """A deep copy of ``base`` whose parameters and buffers share ``base``'s storage (new, frozen Parameter
    objects, so ``requires_grad`` is per copy)."""
    memo: dict[int, Any] = {}
    for p in base.parameters():
        memo[id(p)] = nn.Parameter(p.data, requires_grad=False)
    for b in base.buffers():
        memo[id(b)] = b
    return copy.deepcopy(base, memo)


def _unshare_trainable(model: nn.Module, base_ptrs: Mapping[int, int]) -> None:
    """Parameters a method trains get their own storage (the frozen base stays untouched)."""
    for p in model.parameters():
        if p.requires_grad and p.untyped_storage().data_ptr() in base_ptrs:
            p.data = p.data.clone()


def _disable_dropout(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        if isinstance(m, nn.Dropout) or type(m).__name__.endswith("Dropout"):
            if getattr(m, "p", 0.0):
                m.p = 0.0
                n += 1
    return n


class Candidate:
    """One method on one model: its model, optimizer and measurements."""

    def __init__(self, name: str, model: nn.Module, optimizer: torch.optim.Optimizer | None, method: Method):
        self.name = name
        self.model = model
        self.optimizer = optimizer
        self.method = method
        self.times: list[float] = []
        self.error: str | None = None
        self.mem: dict[str, float] = {}


def build_candidate(name: str, base: nn.Module, family: str, head_prefixes: Sequence[str], model_name: str,
                    base_ptrs: Mapping[int, int]) -> Candidate:
    method: Method = FloorMethod({"name": FLOOR}) if name == FLOOR else build_method(method_config(name, model_name))
    model = prepare_model(shared_copy(base), method, family, head_prefixes)
    _unshare_trainable(model, base_ptrs)
    _disable_dropout(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01) if params else None
    return Candidate(name, model, opt, method)


def make_batch(model_name: str, vocab: int, batch: int, seq: int, device: str, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq), generator=g)  # no pad / special ids
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if MODELS[model_name]["kind"] == "generation":
        out["labels"] = ids.clone()
    else:
        out["labels"] = torch.randint(0, 2, (batch,), generator=g)
    return {k: v.to(device) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------
class Timer:
    """perf_counter on CPU; CUDA events (synchronised) on CUDA."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()


def train_step(c: Candidate, batch: Mapping[str, torch.Tensor], device: str) -> None:
    with _autocast(device):
        loss = c.model(**batch).loss
    loss.backward()
    if c.optimizer is not None:
        c.optimizer.step()
        c.optimizer.zero_grad(set_to_none=True)
    else:  # the floor on a headless model: nothing to update
        c.model.zero_grad(set_to_none=True)


class SavedTensorCounter:
    """``saved_tensors_hooks`` that sums the unique storages autograd saves (excluding ``exclude``)."""

    def __init__(self, exclude: Mapping[int, int]):
        self.exclude = exclude
        self.seen: dict[int, int] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in self.exclude and ptr not in self.seen:
                self.seen[ptr] = st.nbytes()
        except (RuntimeError, NotImplementedError):  # storage-less tensors: not counted
            pass
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    @property
    def nbytes(self) -> int:
        return sum(self.seen.values())


def measure_memory(c: Candidate, batch: Mapping[str, torch.Tensor], device: str) -> dict[str, float]:
    """One step with the saved-tensor counter (and the CUDA peak counter)."""
    model, opt = c.model, c.optimizer
    param_st = _storages(list(model.parameters()) + list(model.buffers()))
    trainable = [p for p in model.parameters() if p.requires_grad]
    trainable_bytes = sum(_storages(trainable).values())
    weights_bytes = sum(param_st.values())
    optim_bytes = 0
    if opt is not None:
        optim_bytes = sum(_storages([v for s in opt.state.values() for v in s.values()
                                     if isinstance(v, torch.Tensor) and v.dim() > 0]).values())
    counter = SavedTensorCounter(param_st)
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        with _autocast(device):
            loss = model(**batch).loss
    loss.backward()
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=True)
    else:
        model.zero_grad(set_to_none=True)
    del loss
    out = {
        "saved_activations_mb": counter.nbytes / MIB,
        "weights_mb": weights_bytes / MIB,
        "trainable_mb": trainable_bytes / MIB,
        "optimizer_state_mb": optim_bytes / MIB,
    }
    if device == "cuda":
        torch.cuda.synchronize()
        rise = torch.cuda.max_memory_allocated() - before
        out["peak_mem_mb"] = (rise + weights_bytes + optim_bytes) / MIB
        out["step_peak_rise_mb"] = rise / MIB
    else:
        out["peak_mem_mb"] = (weights_bytes + trainable_bytes + optim_bytes + counter.nbytes) / MIB
    gc.collect()
    return out


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _spread(xs: Sequence[float]) -> float:
    """Relative spread (max - min) / median of the timed rounds."""
    if len(xs) < 2:
        return 0.0
    m = statistics.median(xs)
    return float((max(xs) - min(xs)) / m) if m > 0 else 0.0


def run_rounds(items: Sequence[Any], fn: Callable[[Any], float], rounds: int, warmup: int,
               record: Callable[[Any, float], None], log: Callable[[str], None] | None = None) -> None:
    """Round-robin over ``items`` (the start rotates each round); warm-up rounds not recorded."""
    n = len(items)
    for r in range(warmup + rounds):
        order = [items[(r + i) % n] for i in range(n)] if n else []
        gc.collect()
        gc.disable()
        try:
            for it in order:
                t = fn(it)
                if r >= warmup:
                    record(it, t)
        finally:
            gc.enable()
        if log:
            log(f"  round {r + 1}/{warmup + rounds}{' (warm-up)' if r < warmup else ''} done")


# --------------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------------
def _perturb_hut(model: nn.Module, seed: int) -> None:
    """Move HUT's factors away from the identity so that the merge is not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad and ".hut." in f".{n}":
                p.add_((torch.randn(p.shape, generator=g) * 0.01).to(p.device, p.dtype))


def bench_inference(base: nn.Module, family: str, head_prefixes: Sequence[str], model_name: str,
                    batch: Mapping[str, torch.Tensor], s: Mapping[str, Any], log) -> dict[str, Any]:
    device = s["device"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    variants: dict[str, nn.Module] = {"base": shared_copy(base)}  # built like the others
    hut_method = build_method(method_config("hut", model_name))
    hut_model = prepare_model(shared_copy(base), hut_method, family, head_prefixes)
    _perturb_hut(hut_model, s["seed"] + 1)
    merged = merge_model(shared_copy(hut_model), hut_method)
    variants["hut_merged"] = merged
    variants["hut_unmerged"] = hut_model
    if "lora" in s["methods"]:
        lora_model = prepare_model(shared_copy(base), build_method(method_config("lora", model_name)), family,
                                   head_prefixes)
        variants["lora_unmerged"] = lora_model
    for m in variants.values():
        m.eval()
    with torch.inference_mode(), _autocast(device):
        ref = hut_model(**inputs).logits.float()
        got = merged(**inputs).logits.float()
        max_diff = float((ref - got).abs().max())
    times: dict[str, list[float]] = {k: [] for k in variants}
    timer = Timer(device)

    def fwd(name: str) -> float:
        with torch.inference_mode(), _autocast(device):
            return timer(lambda: variants[name](**inputs))

    run_rounds(list(variants), fwd, int(s["infer_rounds"]), max(1, int(s["warmup"])),
               lambda k, t: times[k].append(t))
    med = {k: _median(v) for k, v in times.items()}
    out: dict[str, Any] = {f"{k}_s": med[k] for k in med}
    out["merged_over_base"] = med["hut_merged"] / med["base"]
    out["unmerged_over_base"] = med["hut_unmerged"] / med["base"]
    if "lora_unmerged" in med:
        out["lora_unmerged_over_base"] = med["lora_unmerged"] / med["base"]
    out["merged_max_abs_diff"] = max_diff
    out["rounds"] = int(s["infer_rounds"])
    out["spread"] = {k: _spread(v) for k, v in times.items()}
    log(f"  inference: merged/base {out['merged_over_base']:.3f}, unmerged/base {out['unmerged_over_base']:.3f}")
    del variants, hut_model, merged
    return out


def bench_model(model_name: str, s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    from hut.models import load_model

    device = s["device"]
    spec = MODELS[model_name]
    mcfg = model_config(model_name, s["layers"], s.get("vocab"))
    full_depth = int(_load_yaml(CONFIGS / "model" / f"{model_name}.yaml")["arch"][spec["depth_key"]])
    torch.manual_seed(s["seed"])
    t0 = time.time()
    loaded = load_model(mcfg, spec["kind"], num_labels=2, pretrained=False, with_tokenizer=False)
    base = loaded.model.to(device)
    for p in base.parameters():
        p.requires_grad_(False)
    _disable_dropout(base)
    base_ptrs = _storages(list(base.parameters()) + list(base.buffers()))
    cfg = base.config
    vocab = int(cfg.vocab_size)
    batch = make_batch(model_name, vocab, int(s["batch"]), int(s["seq"]), device, s["seed"])
    log(f"[{model_name}] built in {time.time() - t0:.1f} s: {cfg.model_type}, "
        f"{getattr(cfg, spec['depth_key'])}/{full_depth} layers, batch {s['batch']} x {s['seq']}")

    cands: list[Candidate] = []
    failed: dict[str, str] = {}
    for name in s["methods"]:
        try:
            cands.append(build_candidate(name, base, loaded.family, loaded.head_prefixes, model_name, base_ptrs))
        except Exception as e:  # noqa: BLE001 - one method failing must not lose the others
            failed[name] = f"{type(e).__name__}: {e}"
            log(f"  [{name}] cannot be built: {failed[name]}")

    timer = Timer(device)

    def step(c: Candidate) -> float:
        if c.error:
            return float("nan")
        try:
            return timer(lambda: train_step(c, batch, device))
        except Exception as e:  # noqa: BLE001
            c.error = f"{type(e).__name__}: {e}"
            log(f"  [{c.name}] step failed: {c.error}")
            return float("nan")

    t1 = time.time()
    run_rounds(cands, step, int(s["rounds"]), int(s["warmup"]), lambda c, t: c.times.append(t), log)
    log(f"  timing: {time.time() - t1:.1f} s")
    for c in cands:
        if c.error:
            continue
        try:
            c.mem = measure_memory(c, batch, device)
        except Exception as e:  # noqa: BLE001
            c.error = f"memory: {type(e).__name__}: {e}"
            log(f"  [{c.name}] memory pass failed: {c.error}")

    ok = {c.name: c for c in cands if not c.error and c.times and not any(math.isnan(t) for t in c.times)}
    floor = ok.get(FLOOR)
    lora = ok.get("lora")
    floor_t = _median(floor.times) if floor else None
    lora_t = _median(lora.times) if lora else None
    floor_min = min(floor.times) if floor else None
    lora_min = min(lora.times) if lora else None

    def paired(c: Candidate, ref: Candidate | None) -> float | None:
        """Median over rounds of this method's step over the reference's step in the same round."""
        if ref is None:
            return None
        return _median([a / b for a, b in zip(c.times, ref.times)])

    floor_act = floor.mem["saved_activations_mb"] if floor else None
    rows = []
    for c in cands:
        if c.name not in ok:
            failed[c.name] = c.error or "no timed step"
            continue
        t = _median(c.times)
        n_train = sum(p.numel() for p in c.model.parameters() if p.requires_grad)
        row = {
            "method": c.name,
            "model": model_name,
            "train_step_s": t,
            "peak_mem_mb": c.mem["peak_mem_mb"],
            "ratio_to_floor": t / floor_t if floor_t else None,
            "ratio_to_lora": t / lora_t if lora_t else None,
            "saved_activations_mb": c.mem["saved_activations_mb"],
            "extra_act_mb": c.mem["saved_activations_mb"] - floor_act if floor_act is not None else None,
            "trainable_params": n_train,
            "trainable_mb": c.mem["trainable_mb"],
            "optimizer_state_mb": c.mem["optimizer_state_mb"],
            "weights_mb": c.mem["weights_mb"],
            "train_step_min_s": min(c.times),
            "ratio_to_floor_min": min(c.times) / floor_min if floor_min else None,
            "ratio_to_lora_min": min(c.times) / lora_min if lora_min else None,
            "ratio_to_floor_paired": paired(c, floor),
            "ratio_to_lora_paired": paired(c, lora),
            "spread": _spread(c.times),
            "times_s": c.times,
        }
        if "step_peak_rise_mb" in c.mem:
            row["step_peak_rise_mb"] = c.mem["step_peak_rise_mb"]
        rows.append(row)

    # Free the training models before inference.
    del cands, ok, floor, lora
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    inference: dict[str, Any] = {}
    try:
        inference = bench_inference(base, loaded.family, loaded.head_prefixes, model_name, batch, s, log)
    except Exception as e:  # noqa: BLE001
        inference = {"error": f"{type(e).__name__}: {e}", "merged_over_base": None}
        log(f"  inference failed: {inference['error']}")

    setup = {
        "model": model_name,
        "kind": spec["kind"],
        "layers": int(getattr(cfg, spec["depth_key"])),
        "layers_full": full_depth,
        "hidden": int(getattr(cfg, "hidden_size", getattr(cfg, "n_embd", 0))),
        "vocab": vocab,
        "vocab_reduced": s.get("vocab") is not None,
        "batch": int(s["batch"]),
        "seq": int(s["seq"]),
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
        "total_params": sum(p.numel() for p in base.parameters()),
        "method_configs": {m: (method_config(m, model_name) if m != FLOOR else {"name": FLOOR})
                           for m in s["methods"]},
    }
    del base, loaded
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    res = {"setup": setup, "rows": rows, "inference": inference, "failed": failed}
    res["goals"] = goals(model_name, rows, inference)
    return res


# --------------------------------------------------------------------------------------------------
# Goals and output
# --------------------------------------------------------------------------------------------------
def _goal(model: str, name: str, value: float | None, unit: str, target: str, met: bool | None,
          detail: str = "", nd: int = 1) -> dict[str, Any]:
    if value is None:
        line = f"GOAL [{model}] {name}: not measured (target {target})"
    else:
        sign = "+" if value >= 0 else ""
        line = (f"GOAL [{model}] {name}: {sign}{value:.{nd}f}{unit} (target {target}) "
                f"{'MET' if met else 'NOT MET'}{(' - ' + detail) if detail else ''}")
    return {"model": model, "goal": name, "value": value, "unit": unit.strip(), "target": target, "met": met,
            "line": line}


def goals(model: str, rows: Sequence[Mapping[str, Any]], inference: Mapping[str, Any]) -> list[dict[str, Any]]:
    by = {r["method"]: r for r in rows}
    hut, lora = by.get("hut"), by.get("lora")
    out = []
    def pct(key: str) -> float | None:
        return (hut[key] - 1) * 100 if hut and hut.get(key) else None

    def other(ref: str) -> str:
        m, p = pct(f"ratio_to_{ref}_min"), pct(f"ratio_to_{ref}_paired")
        return "" if m is None or p is None else f"fastest rounds {m:+.1f}%, paired per round {p:+.1f}%"

    v = pct("ratio_to_floor")
    out.append(_goal(model, "hut step vs floor", v, "%", f"<= +{GOAL_STEP_VS_FLOOR_PCT:g}%",
                     None if v is None else v <= GOAL_STEP_VS_FLOOR_PCT, other("floor")))
    v = pct("ratio_to_lora")
    out.append(_goal(model, "hut step vs lora", v, "%", "< 0% (faster than LoRA)", None if v is None else v < 0,
                     other("lora")))
    if hut and lora and hut.get("extra_act_mb") is not None and lora.get("extra_act_mb") is not None:
        v = hut["extra_act_mb"] - lora["extra_act_mb"]
        out.append(_goal(model, "hut extra activation memory vs lora", v, " MiB", "<= 0 MiB",
                         v <= 1e-6, f"hut {hut['extra_act_mb']:+.2f} MiB, lora {lora['extra_act_mb']:+.2f} MiB "
                                    f"over the floor", nd=2))
    else:
        out.append(_goal(model, "hut extra activation memory vs lora", None, " MiB", "<= 0 MiB", None))
    r = inference.get("merged_over_base") if inference else None
    v = (r - 1) * 100 if r else None
    out.append(_goal(model, "merged inference vs base", v, "%", f"<= +{GOAL_MERGED_PCT:g}% (equal up to noise)",
                     None if v is None else v <= GOAL_MERGED_PCT))
    return out


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.{nd}f}"
    return str(v)


def markdown(result: Mapping[str, Any]) -> str:
    st = result["setup"]
    lines = [f"# hut.bench: preset={st['preset']}, device={st['device']}", ""]
    lines.append(f"torch {st['torch']}, transformers {st['transformers']}, peft {st['peft']}; "
                 f"{st['threads']} threads; {st['dtype']}; {st['rounds']} timed rounds after {st['warmup']} "
                 f"warm-up, methods interleaved round-robin; dropout p=0 everywhere.")
    if st["device"] == "cpu":
        lines.append(f"CPU: {st['cpu']}; load average at start {st.get('load_average_start')}, at end "
                     f"{st.get('load_average_end')} (load above {st['threads']} means other work shared the cores).")
        if st.get("busy_warning"):
            lines.append(f"**WARNING: {st['busy_warning']}**")
    lines.append(f"JSON: top-level `rows` and `inference` are {result['primary_model']}'s; every model is under "
                 f"`models`.")
    lines.append(f"peak_mem_mb: {NOTES['peak_mem_mb_cuda'] if st['device'] == 'cuda' else NOTES['peak_mem_mb_cpu']}.")
    lines.append("")
    for name, res in result["models"].items():
        ms = res["setup"]
        lines.append(f"## {name}: {ms['kind']}, {ms['layers']}/{ms['layers_full']} layers, hidden {ms['hidden']}, "
                     f"batch {ms['batch']} x {ms['seq']} tokens")
        lines.append("")
        lines.append("| method | trainable | step median (s) | vs floor | vs LoRA | step min (s) | vs floor (min) | "
                     "vs LoRA (min) | spread | saved act (MiB) | extra act vs floor (MiB) | peak mem (MiB) |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in res["rows"]:
            lines.append(f"| {r['method']} | {r['trainable_params']:,} | {_fmt(r['train_step_s'], 4)} | "
                         f"{_fmt(r['ratio_to_floor'])} | {_fmt(r['ratio_to_lora'])} | {_fmt(r['train_step_min_s'], 4)} | "
                         f"{_fmt(r['ratio_to_floor_min'])} | {_fmt(r['ratio_to_lora_min'])} | "
                         f"{_fmt(r['spread'] * 100, 1)}% | "
                         f"{_fmt(r['saved_activations_mb'], 2)} | {_fmt(r['extra_act_mb'], 2)} | "
                         f"{_fmt(r['peak_mem_mb'], 1)} |")
        inf = res["inference"]
        lines.append("")
        if inf.get("error"):
            lines.append(f"Inference: failed ({inf['error']}).")
        else:
            extra = (f", LoRA unmerged/base {_fmt(inf['lora_unmerged_over_base'])}"
                     if "lora_unmerged_over_base" in inf else "")
            lines.append(f"Inference (forward, {inf['rounds']} rounds): base {_fmt(inf['base_s'], 4)} s; "
                         f"HUT merged/base **{_fmt(inf['merged_over_base'])}**, HUT unmerged/base "
                         f"{_fmt(inf['unmerged_over_base'])}{extra}; merged vs unmerged max |diff| "
                         f"{inf['merged_max_abs_diff']:.2e}.")
        if res["failed"]:
            lines.append("")
            lines.append("Failed: " + "; ".join(f"{k}: {v}" for k, v in res["failed"].items()))
        lines.append("")
    lines.append("## Goals")
    lines.append("")
    for g in result["goals"]:
        lines.append(f"- `{g['line']}`")
    lines.append("")
    lines.append("spread = (max - min) / median of the timed rounds. Notes: " +
                 "; ".join(f"{k}: {v}" for k, v in NOTES.items()) + ".")
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "python": platform.python_version()}
    for pkg in ("transformers", "peft"):
        try:
            out[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001
            out[pkg] = "unknown"
    return out


def _loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine makes CPU timings noisy."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(s: Mapping[str, Any], log: Callable[[str], None] = print) -> dict[str, Any]:
    s = dict(s)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(int(s["threads"]))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    t0 = time.time()
    setup: dict[str, Any] = {
        "preset": s["preset"], "device": s["device"], "threads": torch.get_num_threads(),
        "rounds": int(s["rounds"]), "warmup": int(s["warmup"]), "infer_rounds": int(s["infer_rounds"]),
        "methods": list(s["methods"]), "models": list(s["models"]), "seed": int(s["seed"]),
        "dtype": "bf16 autocast (weights fp32)" if s["device"] == "cuda" else "float32",
        "optimizer": "AdamW(lr=1e-5, weight_decay=0.01), torch defaults",
        "cpu": _cpu_name(), "platform": platform.platform(), **_versions(),
        "gpu": torch.cuda.get_device_name(0) if s["device"] == "cuda" else None,
        "load_average_start": _loadavg(),
        "notes": NOTES,
    }
    log(f"hut.bench preset={s['preset']} device={s['device']} threads={setup['threads']} "
        f"methods={','.join(s['methods'])} models={','.join(s['models'])}")
    models: dict[str, Any] = {}
    for m in s["models"]:
        models[m] = bench_model(m, s, log)
    primary = models[s["models"][0]]
    setup["wall_time_s"] = time.time() - t0
    setup["load_average_end"] = _loadavg()
    busy = [x for x in (setup["load_average_start"], setup["load_average_end"]) if x]
    if s["device"] == "cpu" and busy and max(x[0] for x in busy) > setup["threads"] + 0.75:
        setup["busy_warning"] = ("the machine was busy with other work (1-minute load average above the "
                                 f"{setup['threads']} benchmark threads): medians are noisy; the fastest-round "
                                 "columns (min) are the more reliable estimate")
    result = {
        "schema_version": 1,
        "setup": setup,
        # The contract's `rows` and `inference`: the first model (RoBERTa-large by default); every model
        # is under `models`.
        "primary_model": s["models"][0],
        "rows": primary["rows"],
        "inference": primary["inference"],
        "models": models,
        "goals": [g for res in models.values() for g in res["goals"]],
    }
    out = Path(s["out"])
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{s['preset']}-{s['device']}"
    md = markdown(result)
    _atomic_write(out / f"{stem}.json", json.dumps(_clean(result), indent=2, default=_json_default,
                                                  allow_nan=False) + "\n")
    _atomic_write(out / f"{stem}.md", md)
    log("")
    log(md)
    for g in result["goals"]:
        log(g["line"])
    if setup.get("busy_warning"):
        log(f"WARNING: {setup['busy_warning']}")
    log(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')} ({setup['wall_time_s']:.0f} s)")
    return result


def _clean(o: Any) -> Any:
    """NaN/inf -> None (strict JSON)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, Mapping):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, (torch.dtype, torch.device, Path)):
        return str(o)
    return repr(o)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    s = parse_args(sys.argv[1:] if argv is None else argv)
    run(s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
