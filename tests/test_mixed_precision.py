"""Every registered method under CPU bf16 and fp16 autocast (which round like CUDA's), on a small
RoBERTa and a small GPT-2 (width 256, random weights; hut/precision.py):

* a small update of the method's parameters moves the autocast output by 0.7-1.3x of what it moves
  the float32 output (the share of hut.precision), at the start of training and in a trained state;
  and the measure catches the failure it is for (scales rounded to bf16 before use: share ~0);
* autocast gradients of the method's parameters match float32's within the low dtype's tolerance;
* a merged model under bf16 matches the unmerged one as closely as bf16 matches float32.
"""
import copy

import pytest
import torch

from hut import precision
from hut.config import load_group
from hut.methods import METHODS, build_method, merge_model
from hut.methods.hut import HutLinear

DTYPES = ["bf16", "fp16"]
OWN_AUTOGRAD = {"hut", "hut_compact", "ia3", "ssf", "hut_noshift"}  # our custom backward (HUT's autograd functions)
# total relative gradient error: every method / the methods computed by our own autograd functions
GRAD_TOL = {"bf16": (0.1, 0.02), "fp16": (0.03, 0.005)}


def _dtype(name: str) -> torch.dtype:
    dt = precision.DTYPES[name]
    try:
        with torch.autocast("cpu", dtype=dt):
            torch.nn.functional.linear(torch.ones(1, 2), torch.ones(2, 2))
    except RuntimeError as e:  # pragma: no cover - depends on the CPU build
        pytest.skip(f"CPU autocast does not support {name}: {e}")
    return dt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", precision.FAMILIES)
@pytest.mark.parametrize("method", METHODS.names())
def test_a_small_update_survives_autocast(method, family, dtype):
    res = precision.shares(method, family, _dtype(dtype))
    assert res["trained"][0] is not None, "the trained-state update must change the output"
    for regime, (share, _) in res.items():
        if share is None:  # e.g. LoRA at init: A * 1.001 with B = 0 changes nothing, in float32 too
            assert regime == "start"
            continue
        assert 0.7 <= share <= 1.3, f"{regime}: share {share:.3f} of the float32 change survives {dtype}"


def test_the_share_catches_scales_rounded_before_use(monkeypatch):
    """The pre-fix HUT: the scale vectors cast to the autocast dtype before they multiply anything."""
    original = HutLinear._block_vectors

    def rounded(self, start, stop, key):
        vecs = original(self, start, stop, key)
        if not torch.is_autocast_enabled("cpu"):
            return vecs
        dt = torch.get_autocast_dtype("cpu")
        return tuple(v.to(dt).to(v.dtype) for v in vecs)

    monkeypatch.setattr(HutLinear, "_block_vectors", rounded)
    share, _ = precision.shares("hut", "bert", torch.bfloat16)["start"]
    assert share is not None and abs(share) < 0.1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", precision.FAMILIES)
@pytest.mark.parametrize("method", METHODS.names())
def test_autocast_gradients_match_float32(method, family, dtype):
    p = precision.prepare(method, family, batch=8, seq=32)
    precision.move_as_trained(p)
    g32 = torch.cat([g.flatten() for g in precision.gradients(p, None)])
    glo = torch.cat([g.flatten() for g in precision.gradients(p, _dtype(dtype))])
    err = float((glo - g32).norm() / g32.norm())
    loose, tight = GRAD_TOL[dtype]
    assert err < (tight if method in OWN_AUTOGRAD else loose), f"relative gradient error {err:.4f} under {dtype}"


@pytest.mark.parametrize("family", precision.FAMILIES)
@pytest.mark.parametrize("method", [m for m in METHODS.names() if METHODS.get(m).mergeable])
def test_merged_matches_unmerged_under_bf16(method, family):
    p = precision.prepare(method, family, batch=8, seq=32)
    precision.move_as_trained(p)
    y32 = precision.block_output(p, p.model, None)
    y_unmerged = precision.block_output(p, p.model, torch.bfloat16)
    merged = merge_model(copy.deepcopy(p.model), build_method(load_group("method", method)))
    y_merged = precision.block_output(p, merged, torch.bfloat16)
    own = float((y_unmerged - y32).norm() / y32.norm())  # bf16's own error on this model
    assert float((y_merged - y_unmerged).norm() / y_unmerged.norm()) <= 2 * own + 1e-6
    if method in OWN_AUTOGRAD:  # the folded forward *is* the merge: the same numbers, bit for bit
        assert torch.equal(y_merged, y_unmerged)
