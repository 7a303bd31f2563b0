"""Device-to-host reads (each a GPU stall): HUT's layer adds at most one per forward + backward to the
frozen model's count, for the suite's layer and the peft path, in float32 and under bf16 autocast, with a
grown shift; the degenerate-scale safety holds without a read of its own. Counted on the CPU
(hut.bench.host_reads: a TorchDispatchMode on aten._local_scalar_dense and friends, Tensor.tolist wrapped)."""
import copy
import pickle

import pytest
import torch
import torch.nn as nn

from hut.bench import host_reads
from hut.methods.hut import HostReads, HutFactors, HutLinear


def test_the_counter_sees_every_kind_of_read():
    x = torch.tensor([1.0, 0.0, 2.0])
    with host_reads.counting_host_reads() as counts:
        x.sum().item()
        bool(x[0] > 0)
        x.tolist()
        x.nonzero()
        x[x > 0]  # a boolean mask: the result's size depends on the values
        x[x > 1] = 0.0
        x.masked_select(x > 0)
        torch.equal(x, x)
        x.numpy()
    assert counts == {"_local_scalar_dense": 2, "tolist": 1, "nonzero": 1, "index": 1, "index_put_": 1,
                      "masked_select": 1, "equal": 1, "numpy": 1}, counts
    with host_reads.counting_host_reads() as counts:
        (x * 2).sum()
    assert sum(counts.values()) == 0


FAMILIES = ["bert", "gpt2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_frozen_small_models_read_nothing(family):
    assert host_reads.method_reads(host_reads.FROZEN_ROW, family, shift=100.0) == {"float32": 0, "bf16": 0}


@pytest.mark.parametrize("method", ["hut", host_reads.PEFT_ROW, "hut_compact", "ia3", "ssf", "hut_noshift"])
@pytest.mark.parametrize("family", FAMILIES)
def test_huts_layer_adds_at_most_one_read_per_step(method, family):
    """A grown shift (β x 100 after moving off init: the path that recomputes ∂s), float32 and bf16."""
    reads = host_reads.method_reads(method, family, shift=100.0)
    frozen = host_reads.method_reads(host_reads.FROZEN_ROW, family, shift=100.0)
    assert all(reads[dt] - frozen[dt] <= 1 for dt in reads), (reads, frozen)


def test_one_read_serves_every_layer_of_the_model(tiny_model):
    from hut.methods import build_method, prepare_model
    from hut.methods.hut import hut_layers

    lm = tiny_model("tiny_roberta")
    model = prepare_model(lm.model, build_method({"name": "hut", "targets": ["q", "k", "v", "o", "ffn_in"]}),
                          lm.family, lm.head_prefixes)
    layers = [m for _, m in hut_layers(model)]
    assert len(layers) == 10 and len({id(m.reads) for m in layers}) == 1
    ids = torch.randint(5, 1000, (2, 9))
    for dtype in (None, torch.bfloat16):
        with host_reads.counting_host_reads() as counts:
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = model(ids, labels=torch.tensor([0, 1])).loss
            loss.backward()
        assert sum(counts.values()) == 1, counts
    assert layers[0].reads.reads == 2


def test_a_forward_without_backward_leaves_nothing_pending():
    layer = _layer()
    x = torch.randn(4, 8)
    for _ in range(3):
        layer(x)  # gradients on, no backward: the decisions die with their graphs
    assert not [r for r in layer.reads._pending if r() is not None]
    assert layer.reads.reads == 0
    with torch.no_grad():
        layer(x)  # no autograd function at all
    assert not [r for r in layer.reads._pending if r() is not None] and layer.reads.reads == 0


def test_copies_start_with_nothing_pending():
    layer = _layer()
    y = layer(torch.randn(4, 8))
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert isinstance(clone.reads, HostReads) and clone.reads is not layer.reads and not clone.reads._pending
    y.sum().backward()
    assert layer.reads.reads == 1


def _layer(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    base = nn.Linear(8, 6).to(dtype)
    base.requires_grad_(False)
    layer = HutLinear(base, None, lambda d, k: HutFactors(d, k, 3, dtype=dtype))
    with torch.no_grad():
        for p in layer.hut.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("degenerate", ["zero_a", "tiny_s", "both"])
def test_degenerate_scales_under_bf16_keep_plain_autograds_gradients(degenerate):
    """A zero input scale (∂a from the float weight) and an output scale under sqrt(eps) (∂s recomputed):
    no division by either, gradients as plain autograd's within bf16's tolerance, still one read."""
    fast = _layer()
    with torch.no_grad():
        f = fast.hut["w"]
        if degenerate in ("zero_a", "both"):
            f.M_A[2].zero_()
        if degenerate in ("tiny_s", "both"):
            f.gamma[1] = 1e-6
    plain = copy.deepcopy(fast)
    plain.memory_efficient = False
    x = torch.randn(32, 8, requires_grad=True)
    w = torch.randn(32, 6)
    grads = []
    for m in (fast, plain):
        x.grad = None
        with host_reads.counting_host_reads() as counts, torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x)
        with host_reads.counting_host_reads() as back:
            (y.float() * w).sum().backward()
        assert sum(counts.values()) == 0  # the forward never reads
        grads.append({"x": x.grad.clone(), **{n: p.grad.clone() for n, p in m.hut.named_parameters()}})
    assert sum(back.values()) == 0 and fast.reads.reads == 1  # plain autograd reads nothing; fast read once
    for n, g in grads[1].items():
        assert torch.isfinite(grads[0][n]).all(), n
        assert torch.allclose(grads[0][n], g, rtol=0.03, atol=0.03 * g.abs().max()), n
