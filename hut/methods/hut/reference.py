"""The paper's Eq. (8) and (9) as written: the slow reference the fast layer is tested against.

These build the d×k matrix ``W_new`` explicitly (x·W convention, W0 of shape d×k); the layer in
:mod:`hut.methods.hut.layer` never does. Used by tests only.
"""
from __future__ import annotations

import torch


def hut_reference_weight(W0: torch.Tensor, M_A: torch.Tensor, M_B: torch.Tensor) -> torch.Tensor:
    """Eq. (8) literally: ``(M_A·1/r) ⊙ W0 ⊙ (1·M_B/r)``, W0 of shape d×k."""
    d, k = W0.shape
    r = M_A.shape[1]
    if M_A.shape != (d, r) or M_B.shape != (r, k):
        raise ValueError(f"shapes do not fit: W0 {tuple(W0.shape)}, M_A {tuple(M_A.shape)}, M_B {tuple(M_B.shape)}")
    ones_rk = torch.ones(r, k, dtype=W0.dtype, device=W0.device)
    ones_dr = torch.ones(d, r, dtype=W0.dtype, device=W0.device)
    return (M_A @ ones_rk / r) * W0 * (ones_dr @ M_B / r)


def hut_reference_forward(
    x: torch.Tensor,
    W0: torch.Tensor,
    b0: torch.Tensor | None,
    M_A: torch.Tensor,
    M_B: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    bias_mode: str = "scale",
) -> torch.Tensor:
    """Eq. (9) on the Eq. (8) weight, with the frozen bias placed as ``bias_mode`` says."""
    W_new = hut_reference_weight(W0, M_A, M_B)
    h = x @ W_new
    if b0 is not None:
        if bias_mode == "scale":  # b0 is the augmented weight's last row: scaled by 1·M_B/r too
            r = M_B.shape[0]
            h = h + b0 * (torch.ones(1, r, dtype=M_B.dtype, device=M_B.device) @ M_B / r)[0]
        else:
            h = h + b0
    return gamma * h + beta
