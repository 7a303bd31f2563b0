"""The HUT layer: a frozen ``nn.Linear``/``Conv1D`` with HUT factors on all or some output blocks.

With a = mean_r M_A (length d) and b = mean_r M_B (length k), Eq. (8)-(9) are

    W_new = diag(a) · W0 · diag(b),    h = (γ ⊙ b) ⊙ ((a ⊙ x) · W0) + β:

an input scale, an output scale and a shift. The layer never builds a d×k matrix in full precision
(:class:`hut.methods.hut.function.ScaledActivations`); under bf16/fp16 autocast it folds the scales
into the float32 weight before its one cast (:class:`~hut.methods.hut.function.FoldedWeight`), so
that a small update of a scale is never rounded away (see that module's docstring for why and
what it costs).

Frozen bias (the paper's equations have none). ``bias_mode``:

* ``scale`` (default): the bias is the last row of the augmented weight [W0; b0] (the weight of the
  constant input 1), and Eq. (8) is applied to that augmented matrix with the constant input's row
  scale fixed at 1, so b0 is scaled by mean M_B like every other row:
  ``h = γ ⊙ b ⊙ (x·diag(a)·W0 + b0) + β``. In words: HUT wraps the frozen affine layer f as
  ``h = (γ⊙b) ⊙ f(a⊙x) + β``. At identity initialisation the output is *bit-identical* to the
  frozen model, in float32 and under autocast.
* ``keep``: only W0 is replaced and b0 stays as it is: ``h = γ ⊙ (x·W_new + b0) + β``.

Both span the same functions (β is a free shift); they differ only in how b0 enters the gradient of
M_B. A layer without a bias (Llama) behaves the same in both modes.

Initialisation (the paper states none): γ = 1 and β = 0 always, and

* ``init: ones`` (default) - M_A = M_B = 1: the adapted model equals the frozen model exactly;
* ``init: ones_plus_noise`` - 1 + N(0, init_std²) noise, projected so that every row mean of M_A and
  every column mean of M_B is 1 (up to rounding): the same function as ``ones``, different entries.
  With r = 1 a row/column *is* its mean, so the noise is zero.

Fused q/k/v (GPT-2 ``attn.c_attn``, output [q | k | v]): each adapted slice has its own
M_A/M_B/γ/β; a slice that is not adapted is computed from the frozen weight and bias alone, so its
output is the frozen model's.

``merged_module`` folds everything into the frozen weight and bias and returns a stock
``nn.Linear``/``Conv1D`` (zero extra inference latency); it can keep a reference to this layer for
an exact unmerge (:func:`hut.methods.hut.model.unmerge_hut`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from hut.methods.hut.core import assemble, block_vectors, hut_linear, merged_weights, stock_module
from hut.methods.hut.reads import HostReads
from hut.methods.targets import in_out, linear_kind, output_blocks, weight_io

UNMERGE_ATTR = "_hut_unmerge_layer"


# --------------------------------------------------------------------------------------------------
# Trainable factors of one adapted matrix (or one fused slice)
# --------------------------------------------------------------------------------------------------
class Factors(nn.Module):
    """The trainable part for one d×k matrix. ``vectors()`` -> (a [d], b [k] or None, γ [k], β [k])."""

    #: parameter name -> Adam eps multiplier (see :func:`hut.methods.hut.model.apply_eps_scales`)
    eps_scales: dict[str, float] = {}

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class HutFactors(Factors):
    """The paper's parameterisation: M_A (d×r), M_B (r×k), γ (k), β (k): d·r + r·k + 2k parameters."""

    def __init__(self, d: int, k: int, r: int, *, init: str = "ones", init_std: float = 0.02,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__()
        self.d, self.k, self.r = d, k, r
        fk = {"device": device, "dtype": dtype}
        self.M_A = nn.Parameter(torch.ones(d, r, **fk))
        self.M_B = nn.Parameter(torch.ones(r, k, **fk))
        self.gamma = nn.Parameter(torch.ones(k, **fk))
        self.beta = nn.Parameter(torch.zeros(k, **fk))
        if init == "ones_plus_noise" and init_std > 0 and r > 1 and self.M_A.device.type != "meta":
            with torch.no_grad():
                self.M_A.copy_(_mean_one_noise(d, r, 1, init_std, generator))
                self.M_B.copy_(_mean_one_noise(r, k, 0, init_std, generator))

    def vectors(self):
        return self.M_A.mean(dim=1), self.M_B.mean(dim=0), self.gamma, self.beta

    def extra_repr(self) -> str:
        return f"d={self.d}, k={self.k}, r={self.r}"


class CompactFactors(Factors):
    """The means directly. ``split``: a (d), b (k), γ (k), β (k) = HUT at r = 1, d + 3k parameters.
    ``folded``: a (d), γ (k), β (k) with b ≡ 1 (three vectors, d + 2k): the same functions, but
    γ⊙b is one parameter instead of a product of two, so it trains differently from HUT.

    ``eps_scale`` (the HUT rank to imitate) is attached to a and b (see ``apply_eps_scales``).
    """

    def __init__(self, d: int, k: int, *, form: str = "split", eps_scale: float = 1.0, device=None, dtype=None):
        super().__init__()
        self.d, self.k, self.form = d, k, form
        fk = {"device": device, "dtype": dtype}
        self.a = nn.Parameter(torch.ones(d, **fk))
        self.b = nn.Parameter(torch.ones(k, **fk)) if form == "split" else None
        self.gamma = nn.Parameter(torch.ones(k, **fk))
        self.beta = nn.Parameter(torch.zeros(k, **fk))
        self.eps_scales = {"a": float(eps_scale)}
        if self.b is not None:
            self.eps_scales["b"] = float(eps_scale)

    def vectors(self):
        return self.a, self.b, self.gamma, self.beta

    def extra_repr(self) -> str:
        return f"d={self.d}, k={self.k}, form={self.form}, eps_scale={self.eps_scales['a']:g}"


def _mean_one_noise(rows: int, cols: int, mean_dim: int, std: float, gen: torch.Generator | None) -> torch.Tensor:
    """1 + N(0, std²) noise with zero mean along ``mean_dim`` (so those means stay 1)."""
    n = torch.randn(rows, cols, generator=gen, dtype=torch.float64) * std
    return 1.0 + (n - n.mean(dim=mean_dim, keepdim=True))


# --------------------------------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------------------------------
class HutLinear(nn.Module):
    """A frozen ``nn.Linear``/``Conv1D`` with HUT factors on all or some (fused) output blocks.

    The factors live in a ``ModuleDict`` (block key -> :class:`Factors`) registered under the name
    ``FACTORS`` (``hut``: parameter names like ``...query.hut.w.M_A``); a subclass that computes
    another scaling method with this layer (IA3) registers its own name. The forward and the merge
    are :mod:`hut.methods.hut.core`'s; ``reads`` is the model's :class:`HostReads` (one per model, so
    that the backward reads the decisions of every layer at once; a layer built alone gets its own).
    """

    FACTORS = "hut"

    def __init__(
        self,
        base: nn.Module,
        slices: Sequence[int] | None,
        make_factors: Callable[[int, int], Factors],
        *,
        bias_mode: str = "scale",
        memory_efficient: bool = True,
        reads: HostReads | None = None,
    ):
        super().__init__()
        self.kind = linear_kind(base)
        self.base = base
        self.d_in, self.d_out = in_out(base)
        self.blocks = output_blocks(self.d_out, slices)
        self.add_module(self.FACTORS, nn.ModuleDict({key: make_factors(self.d_in, stop - start)
                                                     for key, start, stop in self.blocks if key is not None}))
        self.bias_mode = bias_mode
        self.memory_efficient = memory_efficient
        self.reads = reads if reads is not None else HostReads()
        # "auto": scaled activations in full precision, the folded weight under autocast (the
        # fastest exact pair measured: docs/performance.md); "folded": the folded weight always.
        self.path = "auto"

    @property
    def factors(self) -> nn.ModuleDict:
        return self._modules[self.FACTORS]

    def extra_repr(self) -> str:
        return f"kind={self.kind}, blocks={[(k, a, b) for k, a, b in self.blocks]}, bias_mode={self.bias_mode}"

    def weight_io(self) -> torch.Tensor:
        """The frozen weight as d_in×d_out (a view)."""
        return weight_io(self.base)

    def _block_vectors(self, start: int, stop: int, key: str):
        """(a, s, t) of a block in float: y = s ⊙ (x·diag(a)·W [+ b0 if bias inside]) + t."""
        return block_vectors(self.factors[key], self.base.bias, start, stop, self.bias_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec, vecs = assemble(self.blocks, self._block_vectors)
        return hut_linear(x, self.weight_io(), self.base.bias, spec, vecs, bias_mode=self.bias_mode,
                          memory_efficient=self.memory_efficient, reads=self.reads, path=self.path)

    # -------------------------------------------------------------------------------- merge
    @torch.no_grad()
    def merged_module(self, keep_original: bool = True) -> nn.Module:
        """A stock Linear/Conv1D computing this layer's function (bias added if the base had none)."""
        spec, vecs = assemble(self.blocks, self._block_vectors)
        new = stock_module(self.base, *merged_weights(self.weight_io(), self.base.bias, spec, vecs, self.bias_mode))
        if keep_original:
            object.__setattr__(new, UNMERGE_ATTR, self)  # not a submodule: not in state_dict
        return new
