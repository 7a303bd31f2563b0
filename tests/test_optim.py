"""Weight decay is decided by module type: biases and every normalisation layer's weights get none,
in each model family (GPT-2's ln_1/ln_2/ln_f have no "norm" in their names), adapters' own norms too."""
import pytest
import torch.nn as nn

from hut.methods import build_method, prepare_model
from hut.optim import is_norm, no_decay_names, param_groups


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1))


def _expected(model):
    """Independent of the rule under test: every parameter of a module of a known norm class, and biases."""
    norms = {"LayerNorm", "LlamaRMSNorm"}
    out = set()
    for mn, m in model.named_modules():
        for pn, _ in m.named_parameters(recurse=False):
            if type(m).__name__ in norms or pn == "bias":
                out.add(f"{mn}.{pn}" if mn else pn)
    return out


@pytest.mark.parametrize("name", ["tiny_roberta", "tiny_gpt2", "llama"])
def test_no_decay_is_biases_and_norms(tiny_model, name):
    model = _llama() if name == "llama" else tiny_model(name).model
    got = no_decay_names(model)
    assert got == _expected(model)
    norm_weights = [n for n in got if not n.endswith("bias")]
    assert norm_weights, "every family has normalisation weights"
    if name == "tiny_gpt2":
        assert {"transformer.h.0.ln_1.weight", "transformer.h.1.ln_2.weight", "transformer.ln_f.weight"} <= got
    if name == "llama":
        assert {"model.layers.0.input_layernorm.weight", "model.norm.weight"} <= got


def test_groups_split_decay_and_head_lr(tiny_model):
    lm = tiny_model("tiny_gpt2")
    model = prepare_model(lm.model, build_method({"name": "ladapter", "bottleneck": 4}), lm.family, ())
    groups = param_groups(model, weight_decay=0.1, lr=1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in groups if g["weight_decay"] for p in g["params"]}
    free = {names[id(p)] for g in groups if not g["weight_decay"] for p in g["params"]}
    assert "transformer.h.0.adapter.norm.weight" in free  # the adapter's own LayerNorm
    assert "transformer.h.0.adapter.down.weight" in decayed and "transformer.h.0.adapter.down.bias" in free
    assert all(g["lr"] == 1e-3 for g in groups)
    lm = tiny_model("tiny_roberta")
    model = prepare_model(lm.model, build_method({"name": "hut"}), lm.family, lm.head_prefixes)
    groups = param_groups(model, 0.1, 1e-3, head_lr=5e-2, head_prefixes=lm.head_prefixes)
    head = {names_ for g in groups if g["lr"] == 5e-2 for names_ in [id(p) for p in g["params"]]}
    assert head == {id(p) for n, p in model.named_parameters() if n.startswith("classifier")}


def test_is_norm_by_type_not_name():
    class MyRMSNorm(nn.Module):
        pass

    assert is_norm(nn.LayerNorm(3)) and is_norm(MyRMSNorm()) and is_norm(nn.GroupNorm(1, 2))
    assert not is_norm(nn.Linear(2, 2))
