"""HUT, the Hadamard Updated Transformation (arXiv 2409.13501), and its compact form.

The paper (x·W convention, W0 of shape d×k, frozen) updates a weight as

    Eq. (8)   W_new = (M_A · 1_{r×k} / r) ⊙ W0 ⊙ (1_{d×r} · M_B / r),  M_A ∈ R^{d×r}, M_B ∈ R^{r×k}
    Eq. (9)   h = γ ⊙ (x · W_new) + β,                                γ, β ∈ R^k,

i.e. W_new = diag(mean_r M_A) · W0 · diag(mean_r M_B): an input scale, an output scale, a shift.

=================  =================================================================================
module             what
=================  =================================================================================
``config``         the options of ``hut`` and ``hut_compact`` (typed, validated)
``function``       the autograd functions: full precision (scaled activations) and bf16/fp16 autocast
                   (scales folded into the float32 weight before its one cast), and why
``reads``          ``HostReads``: the backward's decisions of every layer of a model in one host read
``core``           one adapted Linear/Conv1D as functions of its weight, bias and vectors: forward
                   and merge (``HutLinear`` and the peft layer, ``hut.peft``, both call these)
``layer``          ``HutLinear`` (Linear, Conv1D, fused q/k/v slices), the factors, the bias modes,
                   ``merged_module``
``model``          the registered methods, merge/unmerge of a whole model, Adam's eps mapping
``reference``      Eq. (8)/(9) as written (builds the d×k matrix; tests only)
=================  =================================================================================
"""
from hut.methods.hut.core import assemble, block_vectors, hut_linear, merged_weights, stock_module
from hut.methods.hut.layer import CompactFactors, Factors, HutFactors, HutLinear
from hut.methods.hut.model import (
    HutCompactMethod,
    HutMethod,
    adam_eps_scales,
    apply_eps_scales,
    hut_layers,
    merge_hut,
    unmerge_hut,
)
from hut.methods.hut.reads import HostReads
from hut.methods.hut.reference import hut_reference_forward, hut_reference_weight

__all__ = [
    "CompactFactors", "Factors", "HostReads", "HutFactors", "HutLinear", "HutCompactMethod", "HutMethod",
    "adam_eps_scales", "apply_eps_scales", "assemble", "block_vectors", "hut_layers", "hut_linear", "merge_hut",
    "merged_weights", "stock_module", "unmerge_hut", "hut_reference_forward", "hut_reference_weight",
]
