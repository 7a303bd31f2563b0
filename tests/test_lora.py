"""LoRA: peft on whole modules, own layer on fused c_attn slices; identity, training, merge."""
import copy

import pytest
import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.methods import build_method, count_parameters, prepare_model
from hut.methods.lora import FusedSliceLoRA


def _ids(seed=0):
    return torch.randint(5, 1000, (3, 10), generator=torch.Generator().manual_seed(seed))


def _prepared(tiny_model, name, **cfg):
    lm = tiny_model(name)
    method = build_method({"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0, **cfg})
    return lm, method, prepare_model(lm.model, method, lm.family, lm.head_prefixes)


def _train(model, steps=3, classification=False):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for s in range(steps):
        ids = _ids(s)
        out = model(ids, labels=torch.tensor([0, 1, 0]) if classification else ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("name,targets", [("tiny_roberta", ["q", "v"]), ("tiny_gpt2", ["q", "v"]),
                                          ("tiny_gpt2", ["q", "v", "o", "ffn_in"])])
def test_identity_at_init(tiny_model, name, targets):
    frozen = tiny_model(name).model
    _, _, model = _prepared(tiny_model, name, targets=targets)
    ids = _ids()
    assert torch.equal(model(ids).logits, frozen(ids).logits)


def test_counts_tiny(tiny_model):
    lm, _, model = _prepared(tiny_model, "tiny_roberta")
    d, layers = 32, 2
    assert count_parameters(model, lm.head_prefixes)["adapter"] == layers * 2 * 4 * (d + d)
    lm, _, model = _prepared(tiny_model, "tiny_gpt2", targets=["q", "k", "v"])
    assert count_parameters(model, lm.head_prefixes)["adapter"] == layers * 3 * 4 * (d + d)


def test_fused_slices_use_own_layer_and_k_stays_frozen(tiny_model):
    frozen = tiny_model("tiny_gpt2").model
    lm, _, model = _prepared(tiny_model, "tiny_gpt2", targets=["q", "v"])
    c_attn = model.transformer.h[0].attn.c_attn
    assert isinstance(c_attn, FusedSliceLoRA) and set(c_attn.lora_A.keys()) == {"q", "v"}
    _train(model)
    d = model.config.n_embd
    x = torch.randn(2, 5, d)
    for i in range(model.config.n_layer):
        out = model.transformer.h[i].attn.c_attn(x)
        ref = frozen.transformer.h[i].attn.c_attn(x)
        assert torch.equal(out[..., d : 2 * d], ref[..., d : 2 * d])
        assert not torch.allclose(out[..., :d], ref[..., :d])
        assert not torch.allclose(out[..., 2 * d :], ref[..., 2 * d :])


@pytest.mark.parametrize("name,targets", [("tiny_roberta", ["q", "v"]), ("tiny_roberta", ["q", "k", "ffn_out"]),
                                          ("tiny_gpt2", ["q", "v"]), ("tiny_gpt2", ["v", "o", "ffn_in"])])
def test_merge_equals_unmerged_with_stock_modules(tiny_model, name, targets):
    lm, method, model = _prepared(tiny_model, name, targets=targets)
    _train(model, classification=name == "tiny_roberta")
    model.eval()
    ids = _ids(9)
    before = model(ids).logits.detach()
    assert not torch.allclose(before, tiny_model(name).model(ids).logits)  # training moved something
    model = method.merge(model)
    for m in model.modules():
        assert type(m).__module__.startswith(("torch.", "transformers.")), type(m)
    linears = [m for m in model.modules() if isinstance(m, (nn.Linear, Conv1D))]
    assert all(type(m) in (nn.Linear, Conv1D) for m in linears)
    assert torch.allclose(model(ids).logits, before, atol=1e-5)


def test_only_lora_and_head_train(tiny_model):
    lm, _, model = _prepared(tiny_model, "tiny_roberta")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("classifier") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in trainable}
    _train(model, 1, classification=True)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)


def test_dropout_and_scaling_reach_the_layers(tiny_model):
    _, _, model = _prepared(tiny_model, "tiny_gpt2", dropout=0.2, alpha=32)
    layer = model.transformer.h[0].attn.c_attn
    assert isinstance(layer.lora_dropout, nn.Dropout) and layer.lora_dropout.p == 0.2
    assert layer.scaling == 32 / 4
    _, _, model = _prepared(tiny_model, "tiny_roberta", dropout=0.2, alpha=32)
    q = model.roberta.encoder.layer[0].attention.self.query
    assert q.scaling["default"] == 32 / 4 and q.lora_dropout["default"].p == 0.2


@pytest.mark.parametrize("r", [0, -1, 1.5])
def test_bad_rank(r):
    with pytest.raises(ValueError, match=r"method\.r"):
        build_method({"name": "lora", "r": r})


def test_unknown_target(tiny_model):
    lm = tiny_model("tiny_gpt2")
    with pytest.raises(ValueError, match="unknown target"):
        prepare_model(lm.model, build_method({"name": "lora", "targets": ["qq"]}), lm.family, lm.head_prefixes)
    with pytest.raises(ValueError, match="matches no module"):
        prepare_model(copy.deepcopy(lm.model), build_method({"name": "lora"}), "bert", lm.head_prefixes)
