"""Device-to-host reads (each a GPU stall): HUT's layer adds at most one per forward + backward to the
frozen model's count, for the suite's layer and the peft path, in float32 and under bf16 autocast, with a
grown shift; the degenerate-scale safety holds without a read of its own. Counted on the CPU
(hut.bench.host_reads: a TorchDispatchMode on aten._local_scalar_dense and friends, Tensor.tolist wrapped).

The decisions behind that read cost no kernel in the forward and a fixed number of operators per step,
whatever the number of adapted blocks (counted with hut.plan.kernels.KernelCounter)."""
import copy
import contextlib
import pickle

import pytest
import torch
import torch.nn as nn

from hut.bench import host_reads
from hut.methods.hut import HostReads, HutFactors, HutLinear
from hut.methods.hut import reads as hut_reads
from hut.plan.kernels import KernelCounter


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


# ------------------------------------------------------------------------------- decision kernels
FEW, MANY = ["q", "v"], ["q", "k", "v", "o", "ffn_in"]  # 4 and 10 adapted blocks on tiny_roberta
DECISION_OPS = {None: 3, torch.bfloat16: 6}  # reciprocal, max-norm, stack; autocast: + Σ|t|, y - t, Σ|y - t|


def _hut_model(tiny_model, targets):
    from hut.methods import build_method, prepare_model

    lm = tiny_model("tiny_roberta")
    model = prepare_model(lm.model, build_method({"name": "hut", "targets": targets}), lm.family, lm.head_prefixes)
    host_reads.grow_shift(model, 100.0)  # every factor off init, the shift grown: the recompute path runs
    return model.train()  # dropout on: a training step's operators


def _autocast(dtype):
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["float32", "bf16"])
@pytest.mark.parametrize("targets", [FEW, MANY], ids=["q,v", "q,k,v,o,ffn_in"])
def test_the_decisions_add_no_kernel_to_the_forward(tiny_model, targets, dtype):
    """A training forward dispatches exactly the operators of the same forward without gradients (where
    no decision is deferred): the decisions launch nothing per adapted block while the model runs."""
    model = _hut_model(tiny_model, targets)
    ids = torch.randint(5, 1000, (2, 9))
    counts = []
    for grad in (True, False):
        with torch.set_grad_enabled(grad), KernelCounter() as k, _autocast(dtype):
            model(ids, labels=torch.tensor([0, 1]))
        counts.append(k.ops)
    assert counts[0] == counts[1], (counts[0] - counts[1], counts[1] - counts[0])


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["float32", "bf16"])
def test_the_decisions_cost_a_fixed_number_of_operators_per_step(tiny_model, monkeypatch, dtype):
    """Every layer's decisions are computed at the one read, in a few batched operators: the same count for
    4 and 10 adapted blocks (computed per block in each forward, they would cost ~16 kernels per block)."""
    seen: list[KernelCounter] = []
    resolve = HostReads.resolve

    def counted(self):
        with KernelCounter() as k:
            resolve(self)
        seen.append(k)

    monkeypatch.setattr(HostReads, "resolve", counted)
    per_model = {}
    for targets in (FEW, MANY):
        model = _hut_model(tiny_model, targets)
        seen.clear()
        with _autocast(dtype):
            loss = model(torch.randint(5, 1000, (2, 9)), labels=torch.tensor([0, 1])).loss
        loss.backward()
        assert len(seen) == 1 and model.roberta.encoder.layer[0].attention.self.query.reads.reads == 1
        per_model[len(targets)] = seen[0].total
    assert per_model == {2: DECISION_OPS[dtype], 5: DECISION_OPS[dtype]}, (per_model, seen[0].ops)


def _per_block_rule(blocks, vecs, tol, y):
    """The decisions computed block by block, as function.py's docstring states them (the reference)."""
    flags = []
    for start, stop, j in blocks:
        if j < 0:
            continue
        a, s, t = vecs[3 * j : 3 * j + 3]
        recompute = bool(s.abs().min() < tol)
        if y is not None:
            yb = y[:: max(1, y.shape[0] // hut_reads.SHIFT_SAMPLE), start:stop].float()
            recompute |= bool(t.abs().sum() * yb.shape[0] > hut_reads.SHIFT_SHARE * (yb - t).abs().sum())
        flags += [recompute, bool((a == 0).any())]
    return flags


def test_the_batched_decisions_match_the_per_block_rule():
    """One deferral per layer (a whole matrix, a fused q/k/v with a frozen middle, float64 vectors), every
    decision taken at one read: the flags are the per-block rule's, in each layer's order."""
    g = torch.Generator().manual_seed(0)
    owner, cases = HostReads(), []
    for case in range(60):
        fused, dtype = case % 2 == 1, torch.float64 if case % 5 == 0 else torch.float32
        blocks = [(0, 4, 0), (4, 8, -1), (8, 12, 1)] if fused else [(0, 12, 0)]
        vecs = []
        for start, stop, j in blocks:
            if j >= 0:
                a, s = 1 + 0.3 * torch.randn(16, generator=g), 1 + 0.3 * torch.randn(stop - start, generator=g)
                a[3] *= case % 3 != 0  # a zero input scale in a third of the cases
                s[1] *= 1.0 if case % 4 else 1e-3  # a degenerate output scale in a quarter
                t = (case % 7) / 3 * torch.randn(stop - start, generator=g)  # shifts from 0 to 2x the output
                vecs += [v.to(dtype) for v in (a, s, t)]
        y = torch.randn(int(torch.randint(10, 300, (1,), generator=g)), 12, generator=g).to(torch.bfloat16)
        y = y if case % 3 else None  # float32 layers: no shift test
        tol = hut_reads.tolerance(torch.bfloat16 if y is not None else torch.float32)
        cases.append((owner.defer(blocks, vecs, tol, y), _per_block_rule(blocks, vecs, tol, y)))
    got = [d.get() for d, _ in cases]
    assert owner.reads == 1
    assert got == [want for _, want in cases]
    assert {f for flags in got for f in flags[0::2]} == {True, False}  # both ∂s routes taken
    assert {f for flags in got for f in flags[1::2]} == {True, False}  # both ∂a routes taken
