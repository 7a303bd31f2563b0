"""HUT and hut_compact: Eq. (8) equivalence, identity init, merge/unmerge, memory path, fused slices,
the hut == hut_compact trajectory under AdamW, and config errors. Tiny models, CPU, seconds."""
import copy

import pytest
import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.methods import build_method, prepare_model
from hut.methods.hut import (
    CompactFactors,
    HutFactors,
    HutLinear,
    apply_eps_scales,
    hut_layers,
    hut_reference_forward,
    hut_reference_weight,
    merge_hut,
    unmerge_hut,
)

D_IN, D_OUT, R = 12, 18, 4


def _prepared(tiny_model, name, method_cfg):
    lm = tiny_model(name)
    method = build_method(method_cfg)
    model = prepare_model(lm.model, method, lm.family, lm.head_prefixes)
    return lm, method, model


def _ids(seed=0, batch=3, length=11):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 1000, (batch, length), generator=g)


def _randomise(model, std=0.3, seed=1):
    """Move every adapter parameter away from its identity init (so tests can fail)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in hut_layers(model):
            for p in layer.hut.parameters():
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)


def _standalone(kind, slices=None, bias=True, dtype=torch.float64, r=R, bias_mode="scale", mem=True, seed=0):
    torch.manual_seed(seed)
    if kind == "linear":
        base = nn.Linear(D_IN, D_OUT, bias=bias).to(dtype)
    else:
        base = Conv1D(D_OUT, D_IN).to(dtype)
        nn.init.normal_(base.bias)
    base.requires_grad_(False)
    layer = HutLinear(base, slices, lambda d, k: HutFactors(d, k, r, dtype=dtype), bias_mode=bias_mode,
                      memory_efficient=mem)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in layer.hut.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
    return layer


# ------------------------------------------------------------------------------------ Eq. (8)
@pytest.mark.parametrize("kind", ["linear", "conv1d"])
@pytest.mark.parametrize("bias_mode", ["scale", "keep"])
def test_eq8_reference_equals_fast_form(kind, bias_mode):
    layer = _standalone(kind, bias_mode=bias_mode)
    f = layer.hut["w"]
    W0 = layer.weight_io()  # d×k, x·W convention
    x = torch.randn(2, 5, D_IN, dtype=torch.float64)
    ref = hut_reference_forward(x, W0, layer.base.bias, f.M_A, f.M_B, f.gamma, f.beta, bias_mode)
    assert torch.allclose(layer(x), ref, atol=1e-12, rtol=1e-10)
    # weights: the merged weight is Eq. (8)'s W_new with γ folded into its columns
    merged = layer.merged_module(keep_original=False)
    Wm = merged.weight if kind == "conv1d" else merged.weight.t()
    W_new = hut_reference_weight(W0, f.M_A, f.M_B)
    assert torch.allclose(Wm, W_new * f.gamma[None, :], atol=1e-12, rtol=1e-10)
    # and Eq. (8) really is diag(row means of M_A) · W0 · diag(column means of M_B)
    diag_form = torch.diag(f.M_A.mean(1)) @ W0 @ torch.diag(f.M_B.mean(0))
    assert torch.allclose(W_new, diag_form, atol=1e-12)
    # a wrong reference must not pass: swap the roles of the means
    assert not torch.allclose(layer(x), hut_reference_forward(x, W0, layer.base.bias, f.M_A, f.M_B, f.beta + 1,
                                                              f.beta, bias_mode), atol=1e-3)


def test_eq8_reference_without_bias():
    layer = _standalone("linear", bias=False)
    f = layer.hut["w"]
    x = torch.randn(4, D_IN, dtype=torch.float64)
    ref = hut_reference_forward(x, layer.weight_io(), None, f.M_A, f.M_B, f.gamma, f.beta)
    assert torch.allclose(layer(x), ref, atol=1e-12)


def test_bias_modes_differ_only_in_the_bias():
    a = _standalone("linear", bias_mode="scale")
    b = _standalone("linear", bias_mode="keep")
    x = torch.randn(4, D_IN, dtype=torch.float64)
    f = a.hut["w"]
    diff = a(x) - b(x)  # = γ ⊙ (mean M_B - 1) ⊙ b0, independent of x
    expect = f.gamma * (f.M_B.mean(0) - 1) * a.base.bias
    assert torch.allclose(diff, expect.expand_as(diff), atol=1e-12)


# ------------------------------------------------------------------------------- identity at init
@pytest.mark.parametrize("name", ["tiny_roberta", "tiny_gpt2"])
@pytest.mark.parametrize("method", ["hut", "hut_compact"])
@pytest.mark.parametrize("mem", [True, False])
def test_identity_at_init_is_exact(tiny_model, name, method, mem):
    lm = tiny_model(name)
    frozen = copy.deepcopy(lm.model)
    m = build_method({"name": method, "r": 4, "targets": ["q", "v", "o", "ffn_in"], "memory_efficient": mem})
    assert type(m).identity_at_init
    model = prepare_model(lm.model, m, lm.family, lm.head_prefixes)
    assert hut_layers(model)
    ids = _ids()
    assert torch.equal(model(ids).logits, frozen(ids).logits)


def test_identity_with_mean_one_noise(tiny_model):
    lm, _, model = _prepared(tiny_model, "tiny_roberta",
                             {"name": "hut", "r": 8, "init": "ones_plus_noise", "init_std": 0.5})
    frozen = tiny_model("tiny_roberta").model
    f = hut_layers(model)[0][1].hut["w"]
    assert f.M_A.std() > 0.1  # entries are not ones ...
    assert torch.allclose(f.M_A.mean(1), torch.ones(f.d), atol=1e-6)  # ... but their means are
    assert torch.allclose(f.M_B.mean(0), torch.ones(f.k), atol=1e-6)
    ids = _ids()
    assert torch.allclose(model(ids).logits, frozen(ids).logits, atol=1e-5)


# ------------------------------------------------------------------------------- merge / unmerge
@pytest.mark.parametrize("name", ["tiny_roberta", "tiny_gpt2"])
@pytest.mark.parametrize("bias_mode", ["scale", "keep"])
def test_merge_equals_unmerged_and_restores(tiny_model, name, bias_mode):
    lm, method, model = _prepared(tiny_model, name, {"name": "hut", "r": 4, "targets": ["q", "v", "o", "ffn_out"],
                                                     "bias_mode": bias_mode})
    _randomise(model)
    ids = _ids()
    before = model(ids).logits
    layers = dict(hut_layers(model))
    model = method.merge(model)
    assert not hut_layers(model)
    for name_, orig in layers.items():
        merged = model.get_submodule(name_)
        assert type(merged) is (Conv1D if orig.kind == "conv1d" else nn.Linear)
    merged_out = model(ids).logits
    assert torch.allclose(merged_out, before, atol=1e-5)
    assert not torch.equal(merged_out, tiny_model(name).model(ids).logits)  # the merge is not a no-op
    model = method.unmerge(model)
    for name_, orig in layers.items():
        assert model.get_submodule(name_) is orig
    assert torch.equal(model(ids).logits, before)


def test_unmerge_without_merge_is_an_error(tiny_model):
    _, method, model = _prepared(tiny_model, "tiny_roberta", {"name": "hut"})
    with pytest.raises(ValueError, match="nothing to unmerge"):
        method.unmerge(model)


def test_merge_adds_bias_to_bias_free_layer():
    layer = _standalone("linear", bias=False)
    x = torch.randn(5, D_IN, dtype=torch.float64)
    merged = layer.merged_module()
    assert type(merged) is nn.Linear and merged.bias is not None
    assert torch.allclose(merged(x), layer(x), atol=1e-12)
    assert unmerge_hut(merged) is layer


# ------------------------------------------------------------------------------- training
def _step(model, ids, labels=None, opt=None):
    out = model(ids, labels=labels if labels is not None else ids)
    out.loss.backward()
    if opt is not None:
        opt.step()
        opt.zero_grad()
    return out.loss.detach()


@pytest.mark.parametrize("name", ["tiny_roberta", "tiny_gpt2"])
def test_only_adapter_and_head_change(tiny_model, name):
    lm, _, model = _prepared(tiny_model, name, {"name": "hut", "r": 4})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    labels = torch.tensor([0, 1, 1]) if name == "tiny_roberta" else None
    _step(model, _ids(), labels, opt)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = set(before) - trainable
    assert changed and changed <= trainable
    assert all(".hut." in n or n.startswith("classifier") for n in trainable)
    assert any(".hut." in n for n in changed)
    for n in frozen:
        assert torch.equal(dict(model.named_parameters())[n], before[n]), n


@pytest.mark.parametrize("mem", [True, False])
def test_fused_c_attn_k_slice_stays_frozen(tiny_model, mem):
    lm, _, model = _prepared(tiny_model, "tiny_gpt2", {"name": "hut", "r": 4, "targets": ["q", "v"],
                                                       "memory_efficient": mem})
    frozen = tiny_model("tiny_gpt2").model
    c_attn = model.transformer.h[0].attn.c_attn
    assert isinstance(c_attn, HutLinear) and set(c_attn.hut.keys()) == {"q", "v"}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for s in range(3):
        _step(model, _ids(s), None, opt)
    d = model.config.n_embd
    x = torch.randn(2, 7, d)
    for i in range(model.config.n_layer):
        out = model.transformer.h[i].attn.c_attn(x)
        ref = frozen.transformer.h[i].attn.c_attn(x)
        assert torch.equal(out[..., d : 2 * d], ref[..., d : 2 * d])  # k: bit-identical
        assert not torch.allclose(out[..., :d], ref[..., :d])  # q trained
        assert not torch.allclose(out[..., 2 * d :], ref[..., 2 * d :])  # v trained


def test_all_three_fused_slices_get_their_own_factors(tiny_model):
    _, _, model = _prepared(tiny_model, "tiny_gpt2", {"name": "hut", "r": 2, "targets": ["q", "k", "v"]})
    c_attn = model.transformer.h[0].attn.c_attn
    assert set(c_attn.hut.keys()) == {"q", "k", "v"}


# ------------------------------------------------------------------------------- memory path
def _grads(layer, x, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = layer(x)
    w = torch.randn(y.shape, generator=g, dtype=y.dtype)
    (y * w).sum().backward()
    out = {n: p.grad.clone() for n, p in layer.named_parameters() if p.requires_grad}
    out["x"] = x.grad.clone()
    layer.zero_grad()
    x.grad = None
    return y.detach(), out


@pytest.mark.parametrize("kind,slices", [("linear", None), ("conv1d", None), ("conv1d", (0, 2))])
@pytest.mark.parametrize("bias_mode", ["scale", "keep"])
@pytest.mark.parametrize("tiny_scale", [False, True])
def test_memory_efficient_grads_equal_plain(kind, slices, bias_mode, tiny_scale):
    d_out = D_OUT
    fast = _standalone(kind, slices=slices, bias_mode=bias_mode, mem=True)
    plain = copy.deepcopy(fast)
    plain.memory_efficient = False
    if tiny_scale:  # forces the fallback that saves the pre-scale output
        for m in (fast, plain):
            with torch.no_grad():
                next(iter(m.hut.values())).gamma[0] = 1e-12
    x = torch.randn(3, 5, D_IN, dtype=torch.float64, requires_grad=True)
    y1, g1 = _grads(fast, x)
    y2, g2 = _grads(plain, x)
    assert fast.reads.reads == 1  # the backward read its decisions (recompute v where |s| is tiny) once
    assert y1.shape[-1] == d_out and torch.equal(y1, y2)
    assert g1.keys() == g2.keys()
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-10, rtol=1e-8), n


def _saved_bytes(fn):
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.device)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn()
    return y, seen


def test_memory_efficient_saves_less():
    fast = _standalone("linear", dtype=torch.float32, mem=True)
    plain = copy.deepcopy(fast)
    plain.memory_efficient = False
    x = torch.randn(64, D_IN, requires_grad=True)
    y_f, saved_f = _saved_bytes(lambda: fast(x))
    y_p, saved_p = _saved_bytes(lambda: plain(x))
    big = lambda saved, y: {k: v for k, v in saved.items() if v >= x.numel() * 4}  # noqa: E731
    out_ptr = (y_f.untyped_storage().data_ptr(), y_f.device)
    # fast: x and its own output (shared with whatever consumes y) and nothing else of activation size
    assert set(big(saved_f, y_f)) <= {(x.untyped_storage().data_ptr(), x.device), out_ptr}
    extra_f = sum(v for k, v in big(saved_f, y_f).items() if k != out_ptr)
    extra_p = sum(big(saved_p, y_p).values())
    assert extra_f < extra_p


@pytest.mark.parametrize("mem", [True, False])
def test_autocast_bf16(mem):
    layer = _standalone("conv1d", slices=(0, 2), dtype=torch.float32, mem=mem)
    x = torch.randn(4, 6, D_IN, requires_grad=True)
    ref = layer(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        frozen = layer.base(x)
    assert y.dtype == torch.bfloat16 == frozen.dtype
    assert torch.allclose(y.float(), ref, atol=0.1, rtol=0.05)
    assert torch.equal(y[..., D_OUT // 3 : 2 * D_OUT // 3], frozen[..., D_OUT // 3 : 2 * D_OUT // 3])
    y.float().pow(2).sum().backward()
    for p in layer.hut.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
    assert x.grad.dtype == torch.float32


def test_autocast_grads_agree_between_paths():
    fast = _standalone("linear", dtype=torch.float32, mem=True)
    plain = copy.deepcopy(fast)
    plain.memory_efficient = False
    x = torch.randn(8, D_IN, requires_grad=True)
    res = []
    for m in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x)
        y.float().sum().backward()
        res.append((y.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}))
        x.grad = None
    assert torch.equal(res[0][0], res[1][0])
    for n in res[0][1]:
        assert torch.allclose(res[0][1][n], res[1][1][n], rtol=0.05, atol=0.05 * res[1][1][n].abs().max()), n


@pytest.mark.parametrize("kind,slices", [("linear", None), ("conv1d", (0, 2))])
def test_autocast_lowest_layer_keeps_no_folded_weight(kind, slices):
    """With no input gradient (the lowest adapted layer) ∂a comes from the float weight, W' is not saved."""
    fast = _standalone(kind, slices=slices, dtype=torch.float32, mem=True)
    with torch.no_grad():  # scales away from 1, so that a wrong ∂a formula shows
        for p in fast.hut.parameters():
            p.add_(0.1 * torch.randn_like(p))
    plain = copy.deepcopy(fast)
    plain.memory_efficient = False
    x = torch.randn(8, D_IN)
    res = []
    for m in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, saved = _saved_bytes(lambda: m(x))
        y.float().pow(2).sum().backward()
        res.append((y.detach(), saved, {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}))
    assert torch.equal(res[0][0], res[1][0])
    for n, g in res[1][2].items():
        assert torch.allclose(res[0][2][n], g, rtol=0.02, atol=0.02 * g.abs().max()), n
    w_low = fast.weight_io().numel() * 2  # a bf16 copy of the weight
    assert all(v != w_low for v in res[0][1].values())
    x.requires_grad_(True)  # with an input gradient it keeps W' (the frozen layer keeps its cast too)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, saved = _saved_bytes(lambda: fast(x))
    assert any(v == w_low for v in saved.values())


# ------------------------------------------------------------------------------- hut == hut_compact
def _train_adamw(model, steps, eps, wd, use_eps_scale):
    params = [p for p in model.parameters() if p.requires_grad]
    groups = apply_eps_scales(params, model, eps) if use_eps_scale else params
    opt = torch.optim.AdamW(groups, lr=3e-2, eps=eps, weight_decay=wd, foreach=False)
    g = torch.Generator().manual_seed(123)
    losses = []
    for _ in range(steps):
        ids = torch.randint(5, 1000, (4, 9), generator=g)
        labels = torch.randint(0, 2, (4,), generator=g)
        losses.append(_step(model, ids, labels, opt))
    return torch.stack(losses)


def _means(model):
    out = {}
    for name, layer in hut_layers(model):
        for key, f in layer.hut.items():
            a, b, gamma, beta = f.vectors()
            out[f"{name}.{key}"] = torch.cat([a, b, gamma, beta]).detach()
    return out


@pytest.mark.parametrize("r", [3, 8])
def test_hut_and_compact_follow_the_same_adamw_trajectory(tiny_model, r):
    eps, wd = 1e-3, 0.1  # a large eps so that a wrong eps mapping shows
    base = tiny_model("tiny_roberta").model.double()
    lm = tiny_model("tiny_roberta")
    runs = {}
    for label, cfg, scaled in [
        ("hut", {"name": "hut", "r": r, "init": "ones_plus_noise", "init_std": 0.3}, False),
        ("compact", {"name": "hut_compact", "r": r}, True),
        ("compact_unscaled", {"name": "hut_compact", "r": r}, False),
    ]:
        torch.manual_seed(7)
        model = prepare_model(copy.deepcopy(base), build_method(cfg), lm.family, lm.head_prefixes)
        losses = _train_adamw(model, 100, eps, wd, scaled)
        runs[label] = (losses, _means(model), model.classifier.dense.weight.detach().clone())
    (l_h, m_h, c_h), (l_c, m_c, c_c), (_, m_u, _) = runs["hut"], runs["compact"], runs["compact_unscaled"]
    assert torch.allclose(l_h, l_c, atol=1e-9, rtol=1e-9)
    assert torch.allclose(c_h, c_c, atol=1e-9)
    for k in m_h:
        assert torch.allclose(m_h[k], m_c[k], atol=1e-9), k
    # without the eps mapping the trajectories separate (so the test above can fail)
    assert max((m_h[k] - m_u[k]).abs().max().item() for k in m_h) > 1e-4


def test_compact_parameterisation():
    f = CompactFactors(5, 7, eps_scale=4)
    assert sum(p.numel() for p in f.parameters()) == 5 + 3 * 7 and f.eps_scales == {"a": 4.0, "b": 4.0}
    g = CompactFactors(5, 7, form="folded")
    assert sum(p.numel() for p in g.parameters()) == 5 + 2 * 7


def test_apply_eps_scales_only_touches_compact(tiny_model):
    _, _, model = _prepared(tiny_model, "tiny_roberta", {"name": "hut_compact", "r": 4})
    groups = apply_eps_scales([{"params": [p for p in model.parameters() if p.requires_grad], "lr": 1}], model, 1e-6)
    eps = sorted({g["eps"] for g in groups})
    assert eps == [1e-6, 4e-6]
    _, _, model = _prepared(tiny_model, "tiny_roberta", {"name": "hut", "r": 4})
    groups = apply_eps_scales([p for p in model.parameters() if p.requires_grad], model, 1e-6)
    assert len(groups) == 1 and groups[0]["eps"] == 1e-6


# ------------------------------------------------------------------------------- config errors
@pytest.mark.parametrize("method", ["hut", "hut_compact"])
@pytest.mark.parametrize("r", [0, -3, 2.5, "8", True])
def test_bad_rank(method, r):
    with pytest.raises(ValueError, match=r"method\.r"):
        build_method({"name": method, "r": r})


@pytest.mark.parametrize("key,value", [("init", "zeros"), ("bias_mode", "none"), ("memory_efficient", "yes"),
                                       ("init_std", -1.0)])
def test_bad_options(key, value):
    with pytest.raises(ValueError, match=key):
        build_method({"name": "hut", key: value})


def test_unknown_target(tiny_model):
    lm = tiny_model("tiny_roberta")
    with pytest.raises(ValueError, match="unknown target"):
        prepare_model(lm.model, build_method({"name": "hut", "targets": ["q", "gate"]}), lm.family, lm.head_prefixes)


def test_target_the_architecture_lacks(tiny_model):
    lm = tiny_model("tiny_roberta")  # a BERT-style model has no GPT-2 c_attn / mlp.c_fc
    with pytest.raises(ValueError, match="matches no module"):
        prepare_model(lm.model, build_method({"name": "hut", "targets": ["q"]}), "gpt2", lm.head_prefixes)


def test_merge_model_helper_refuses_nothing(tiny_model):
    model = nn.Sequential(nn.Linear(3, 3))
    assert merge_hut(model) is model  # nothing to merge is fine
