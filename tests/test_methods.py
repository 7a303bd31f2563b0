"""The method contract, for every registered method on three tiny random models (no download).

Parametrised over ``METHODS.names()`` (so new methods are covered automatically) x
{tiny_roberta (sequence classification), tiny_gpt2 (causal LM, fused c_attn), a tiny Llama (causal
LM, built inline)}, each method with its ``configs/method/<name>.yaml`` defaults (plus the few
small overrides in ``OVERRIDES`` that tiny widths need):

* identity at init (outputs equal to the frozen model's) for every method with ``identity_at_init``;
* after one AdamW step only the method's parameters and the head changed; frozen weights bit-identical;
* merged output equals unmerged output after training, and merged models hold stock modules only;
* registry refuses duplicates; an unknown method name is a clear error from ``build_method``.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hut.methods import METHODS, build_method, count_parameters, merge_model, prepare_model  # noqa: E402
from hut.methods.base import is_head  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MODELS = ("tiny_roberta", "tiny_gpt2", "tiny_llama")

# Tiny widths (d=32; Llama's k/v are 16 wide) cannot hold FourierFT's 1000 frequencies.
OVERRIDES = {"fourierft": {"n_frequency": 64}}
# (method, model) pairs a method documents as unsupported -> the error it must raise.
UNSUPPORTED = {("bitfit", "tiny_llama"): "no bias parameters"}
# Methods that train (some of) the model's own weights: which original parameter names may change.
TRAINS_BASE = {
    "ft": lambda name, n_layers: True,
    "ft_top2": lambda name, n_layers: bool(
        re.search(rf"\.(layer|h|layers)\.({n_layers - 2}|{n_layers - 1})\.", name)),
    "bitfit": lambda name, n_layers: name.endswith(".bias"),
}


# --------------------------------------------------------------------------- fixtures / helpers
def method_cfg(name: str, **extra) -> dict:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "method" / f"{name}.yaml"), resolve=True)
    cfg.pop("defaults", None)
    return {**cfg, **OVERRIDES.get(name, {}), **extra}


def build(model_name: str, seed: int = 0):
    """(model in eval mode, family, head_prefixes, kind)."""
    torch.manual_seed(seed)
    if model_name == "tiny_llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
        return LlamaForCausalLM(cfg).eval(), "llama", (), "generation"
    from omegaconf import OmegaConf

    from hut.models import load_model

    mcfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / f"{model_name}.yaml"), resolve=True)
    kind = "generation" if "gpt2" in model_name else "classification"
    lm = load_model(mcfg, kind, pretrained=False, with_tokenizer=False)
    return lm.model.eval(), lm.family, lm.head_prefixes, kind


def batch(kind: str, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    if kind == "classification":
        ids[0, -3:] = 0  # right padding (pad id 0) in one row
        mask[0, -3:] = 0
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1])}
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.clone()}


def logits(model, b: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**{k: v for k, v in b.items() if k != "labels"}).logits


def prepared(method_name: str, model_name: str, **extra):
    model, family, heads, kind = build(model_name)
    frozen = copy.deepcopy(model)
    method = build_method(method_cfg(method_name, **extra))
    if (method_name, model_name) in UNSUPPORTED:
        with pytest.raises(ValueError, match=UNSUPPORTED[(method_name, model_name)]):
            prepare_model(model, method, family, heads)
        pytest.skip(f"{method_name} does not support {model_name} (raises a clear error, checked)")
    model = prepare_model(model, method, family, heads)
    return method, model, frozen, family, heads, kind


def adamw_steps(model, kind: str, steps: int = 1, lr: float = 1e-2) -> None:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for s in range(steps):
        out = model(**batch(kind, seed=s))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def combos():
    return [(m, n) for m in METHODS.names() for n in MODELS]


# --------------------------------------------------------------------------- contract tests
@pytest.mark.parametrize("method_name,model_name", combos())
def test_identity_at_init(method_name, model_name):
    method, model, frozen, _, _, kind = prepared(method_name, model_name)
    b = batch(kind)
    if method.identity_at_init:
        torch.testing.assert_close(logits(model, b), logits(frozen, b), atol=1e-6, rtol=0)
    else:  # documented as not an identity: the method must visibly act from step 0
        assert not torch.allclose(logits(model, b), logits(frozen, b), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method_name,model_name", combos())
def test_one_step_changes_only_method_and_head(method_name, model_name):
    model, family, heads, kind = build(model_name)
    n_layers = model.config.num_hidden_layers
    originals = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    method = build_method(method_cfg(method_name))
    if (method_name, model_name) in UNSUPPORTED:
        pytest.skip("unsupported (checked in test_identity_at_init)")
    model = prepare_model(model, method, family, heads)
    counts = count_parameters(model, heads)
    assert counts["adapter"] > 0, "the method trains nothing"
    for n, p in model.named_parameters():
        if is_head(n, heads):
            assert p.requires_grad, f"head parameter {n} is frozen"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adamw_steps(model, kind)

    may_change = TRAINS_BASE.get(method_name, lambda name, n_layers: False)
    original_ids = {id(p) for p, _ in originals.values()}
    for name, (p, p0) in originals.items():  # the model's own weights
        if is_head(name, heads) or may_change(name, n_layers):
            continue
        assert torch.equal(p.detach(), p0), f"{method_name}: frozen weight {name} changed"
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, f"{method_name}: nothing changed after one step"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(changed) <= trainable
    method_changed = [n for n, p in model.named_parameters()
                      if n in changed and not is_head(n, heads)]
    assert method_changed, f"{method_name}: only the head changed"
    if method_name not in TRAINS_BASE:  # injection methods train new parameters only
        assert all(id(p) not in original_ids for n, p in model.named_parameters() if n in method_changed)


@pytest.mark.parametrize("method_name,model_name",
                         [c for c in combos() if METHODS.get(c[0]).mergeable])
def test_merge_matches_unmerged_and_leaves_stock_modules(method_name, model_name):
    method, model, frozen, _, _, kind = prepared(method_name, model_name)
    adamw_steps(model, kind, steps=2, lr=5e-2)  # two steps: LoRA-like A and B both move
    b = batch(kind, seed=7)
    before = logits(model, b)
    assert not torch.allclose(before, logits(frozen, b), atol=1e-4), "training did not move the method"
    merged = merge_model(model, method)
    after = logits(merged, b)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    foreign = sorted({type(m).__module__ + "." + type(m).__name__ for m in merged.modules()
                      if type(m).__module__.split(".")[0] in ("peft", "hut")})
    assert not foreign, f"{method_name}: merged model still holds {foreign}"


def test_registry_refuses_duplicate_names():
    from hut.registry import Registry

    name = METHODS.names()[0]
    existing = METHODS.get(name)

    class Dummy:
        pass

    with pytest.raises(ValueError, match=f"duplicate method name '{name}'"):
        METHODS.register(name)(Dummy)
    assert METHODS.get(name) is existing
    reg = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        reg.add("a", 2)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown method 'no_such_method'; known methods: .*ft"):
        build_method({"name": "no_such_method"})


def test_registered_name_is_the_class_name_attribute():
    for name in METHODS.names():
        assert METHODS.get(name).name == name  # records and errors use method.name


def test_every_method_has_a_config_and_every_config_a_method():
    files = {p.stem for p in (CONFIGS / "method").glob("*.yaml")}
    assert set(METHODS.names()) == files
    for name in files:
        assert method_cfg(name)["name"] == name


# --------------------------------------------------------------------------- method specifics
def test_fourierft_init_zero_is_identity():
    method, model, frozen, _, _, kind = prepared("fourierft", "tiny_roberta", init_zero=True)
    assert method.identity_at_init
    b = batch(kind)
    torch.testing.assert_close(logits(model, b), logits(frozen, b), atol=1e-6, rtol=0)


def test_peft_methods_on_fused_c_attn_adapt_the_whole_module():
    from peft.tuners.tuners_utils import BaseTunerLayer

    _, model, _, _, _, _ = prepared("vera", "tiny_gpt2")
    attn = model.transformer.h[0].attn
    assert isinstance(attn.c_attn, BaseTunerLayer)  # q, v -> all of c_attn (peft: whole modules)
    assert attn.c_attn.vera_lambda_b["default"].numel() == 3 * model.config.n_embd


def test_ft_top2_trains_exactly_the_last_two_blocks():
    _, model, _, _, heads, _ = prepared("ft_top2", "tiny_gpt2")
    n = model.config.n_layer
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    expected = {k for k, _ in model.named_parameters() if re.match(rf"transformer\.h\.({n - 2}|{n - 1})\.", k)}
    assert trainable == expected


def test_bitfit_trains_biases_and_head_only():
    _, model, _, _, heads, _ = prepared("bitfit", "tiny_roberta")
    for k, p in model.named_parameters():
        assert p.requires_grad == (k.endswith(".bias") or is_head(k, heads)), k


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_prefix_causal_lm_forward_and_beam_generate(model_name):
    _, model, _, _, _, kind = prepared("prefix", model_name)
    b = batch(kind)
    assert model(**b).loss.isfinite()
    ids = torch.randint(5, 1000, (2, 6))
    mask = torch.ones_like(ids)
    ids[1, :2], mask[1, :2] = 0, 0  # left padding, as the E2E decoder uses
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, num_beams=2, max_new_tokens=4, do_sample=False,
                             pad_token_id=0, eos_token_id=2, early_stopping=True)
    assert out.shape[0] == 2 and out.shape[1] > ids.shape[1]


def test_prefix_sequence_classification_keeps_own_head_and_positions():
    from peft.utils.other import ModulesToSaveWrapper

    _, model, frozen, _, heads, kind = prepared("prefix", "tiny_roberta")
    assert not any(isinstance(m, ModulesToSaveWrapper) for m in model.modules())
    head = [k for k, p in model.named_parameters() if is_head(k, heads)]
    assert head and all(p.requires_grad for k, p in model.named_parameters() if k in head)
    b = batch(kind)
    out = model(**b, token_type_ids=torch.zeros_like(b["input_ids"]))
    assert out.loss.isfinite() and out.logits.shape == (3, 2)
    out.loss.backward()
    assert model.prompt_encoder["default"].embedding.weight.grad.abs().sum() > 0
    # a full-length input: positions are not shifted by the prefix (RoBERTa's table would overflow)
    n = frozen.config.max_position_embeddings - 2
    ids = torch.randint(5, 1000, (2, n))
    with torch.no_grad():
        assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.shape == (2, 2)


def test_prefix_does_not_shift_encoder_positions():
    """The prefix is not made of tokens: the embeddings (positions included) equal the frozen model's."""
    _, model, frozen, _, _, kind = prepared("prefix", "tiny_roberta")
    b = batch(kind)
    seen = {}
    emb = model.base_model.roberta.embeddings
    emb.register_forward_hook(lambda m, a, o: seen.__setitem__("prefix", o.detach()))
    frozen.roberta.embeddings.register_forward_hook(lambda m, a, o: seen.__setitem__("frozen", o.detach()))
    logits(model, b)
    logits(frozen, b)
    torch.testing.assert_close(seen["prefix"], seen["frozen"], atol=0, rtol=0)


def test_a_model_type_users_type_is_accepted_as_its_family(tiny_model):
    """``prepare_model(model, method, "roberta", ...)`` is the bert family's (what a user of the library
    would type for a RoBERTa); a family that is neither is one line naming both lists."""
    heads = ("classifier",)
    by_type = prepare_model(tiny_model("tiny_roberta").model, build_method({"name": "hut", "r": 2}), "roberta", heads)
    by_family = prepare_model(tiny_model("tiny_roberta").model, build_method({"name": "hut", "r": 2}), "bert", heads)
    assert count_parameters(by_type, heads) == count_parameters(by_family, heads)
    assert count_parameters(by_type, heads)["adapter"] > 0
    with pytest.raises(ValueError, match=r"^unknown model family 'deberta': give a family \(bert, gpt2, llama\) "
                                         r"or a transformers model type \(bert, gpt2, llama, roberta\)$"):
        prepare_model(tiny_model("tiny_roberta").model, build_method({"name": "hut"}), "deberta", heads)
