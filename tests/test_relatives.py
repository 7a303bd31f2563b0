"""HUT's relatives and parts against their references: DoRA (our layer) equals peft's DoRA in float32;
HiRA (peft's layer and our fused-slice layer) computes W0 + W0 ⊙ B·A; the parts train only their vectors."""
import copy

import pytest
import torch
import torch.nn as nn
from peft import LoraConfig, inject_adapter_in_model
from transformers.pytorch_utils import Conv1D

from hut.methods.hira import FusedSliceHiRA
from hut.methods.lora import DoraLinear
from hut.methods.parts import PartFactors


class Two(nn.Module):
    def __init__(self, conv: bool):
        super().__init__()
        torch.manual_seed(0)
        self.lin = Conv1D(12, 8) if conv else nn.Linear(8, 12)
        nn.init.normal_(self.lin.bias, std=0.5)

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize("conv", [False, True])
def test_dora_equals_peft_dora_in_float32(conv):
    ref = Two(conv)
    ours = copy.deepcopy(ref)
    ref = inject_adapter_in_model(LoraConfig(r=2, lora_alpha=4, target_modules=["lin"], use_dora=True,
                                             fan_in_fan_out=conv, lora_dropout=0.0), ref)
    layer = DoraLinear(ours.lin, None, r=2, alpha=4, dropout=0.0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a trained state: B ≠ 0, magnitude moved
        A, B = torch.randn(2, 8, generator=g), torch.randn(12, 2, generator=g)
        m = torch.rand(12, generator=g) + 0.5
        ref.lin.lora_A["default"].weight.copy_(A)
        ref.lin.lora_B["default"].weight.copy_(B)
        ref.lin.lora_magnitude_vector["default"].weight.copy_(m)
        layer.lora_A["w"].copy_(A)
        layer.lora_B["w"].copy_(B)
        layer.magnitude["w"].copy_(m)
    x = torch.randn(5, 8, generator=g)
    y_ref, y = ref(x), layer(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    y_ref.square().sum().backward()
    y.square().sum().backward()
    torch.testing.assert_close(layer.magnitude["w"].grad, ref.lin.lora_magnitude_vector["default"].weight.grad,
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.lora_B["w"].grad, ref.lin.lora_B["default"].weight.grad, rtol=1e-4, atol=1e-5)


def test_fused_slice_hira_is_w0_plus_w0_hadamard_ba():
    torch.manual_seed(0)
    base = Conv1D(3 * 4, 6)  # fused [q | k | v], each 4 wide
    w0 = base.weight.detach().clone()
    layer = FusedSliceHiRA(base, (0, 2), r=2, alpha=0.0, dropout=0.0)
    with torch.no_grad():
        for p in layer.lora_B.values():
            p.normal_()
    x = torch.randn(3, 6)
    expect = x @ w0 + base.bias
    for key, (lo, hi) in {"q": (0, 4), "v": (8, 12)}.items():
        delta = w0[:, lo:hi] * (layer.lora_B[key] @ layer.lora_A[key]).t()  # W0 ⊙ B·A in x·W layout
        expect[:, lo:hi] += x @ delta
    torch.testing.assert_close(layer(x), expect)
    merged = layer.merged_module()
    torch.testing.assert_close(merged(x), expect)


def test_part_factors_train_only_their_vectors():
    f = PartFactors(3, 4, input_scale=False, shift=True)
    assert sorted(n for n, _ in f.named_parameters()) == ["beta", "gamma"]
    a, b, s, t = f.vectors()
    assert b is None and torch.equal(a, torch.ones(3)) and not a.requires_grad
    f = PartFactors(3, 4, input_scale=True, shift=False)
    assert sorted(n for n, _ in f.named_parameters()) == ["a", "gamma"]
    assert torch.equal(f.vectors()[3], torch.zeros(4))
