"""HUT's backward decisions for every layer of a model: computed together, read in one device-to-host read.

HUT's backward takes data-dependent decisions per adapted block (see :mod:`hut.methods.hut.function`):

* recompute ∂s from the unscaled product where some |s| is under sqrt(eps) of the compute dtype or,
  under bf16/fp16 autocast, where the shift dominates the output (:data:`SHIFT_SHARE`);
* take ∂a from the float weight where an input scale is zero.

On a GPU, every ``bool()``, ``.item()`` or ``.tolist()`` of a device tensor stalls the host until the
device has caught up, and every small operator is a kernel launch the host pays for. So a layer's
forward computes nothing for its decisions: it *defers* views of what they need (its vectors a, s, t
and, under autocast, ~64 sampled rows of its output y; ``detach`` and slicing launch nothing) to the
:class:`HostReads` its builder gave it (one per model). The first backward that needs a decision
computes the statistics of every decision pending on that device at once (:func:`statistics`: six
batched operators however many layers) and reads them in one ``tolist()``; each layer's backward
takes its share, compared on the host. The forward never reads and launches no decision kernel.

Launches on a GPU (from PyTorch's foreach kernels; not measured here): a foreach operator over dense
tensors of one dtype launches once per chunk of tensors, so the reciprocal and the norms cost a few
launches in all; the subtraction ``y - t`` takes the per-tensor route (strided sampled rows, t
broadcast) and launches one small kernel per adapted block, from inside one C++ operator.

The views hold no new memory: the layer's backward saves y and the vectors anyway. (Saved-tensor
hooks that move saved activations off the device, ``torch.autograd.graph.save_on_cpu``, would not
move these views: each layer's y then stays on the device until the first backward.) A forward whose
backward never runs (an evaluation with gradients on) leaves nothing behind: the :class:`HostReads`
keeps weak references, and a decision (with the views it holds) dies with its autograd graph.

Activation checkpointing: the non-reentrant kind (transformers' default) re-runs a segment's forward
only to refill saved tensors and keeps the first forward's decisions, so a step still reads once; the
reentrant kind (``use_reentrant=True``) runs each segment's forward and backward anew, one read per
checkpointed segment (measured on a 2-layer RoBERTa: 1 and 2 reads).
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import NamedTuple, Sequence

import torch

PRUNE_AT = 256  # pending references kept before the dead ones are dropped

# The shift dominates where |t| is over this share of |y - t| (sums over the block, on ~64 rows): y
# rounded to the low dtype then leaves y - t less than half its bits, and ∂s is recomputed. Under it,
# the rounding of y costs ∂s at most 1.5x the error of the product itself (tests/test_numerics.py:
# shift ratios up to 100 stay within 2x plain autograd's error).
SHIFT_SHARE = 0.5
SHIFT_SAMPLE = 64  # rows (tokens) the shift test looks at


def tolerance(dtype: torch.dtype) -> float:
    """Under sqrt(eps) of ``dtype`` (the compute dtype) a scale is degenerate: dividing by it amplifies rounding."""
    return math.sqrt(torch.finfo(dtype).eps)


class BlockInputs(NamedTuple):
    """What one adapted block's decisions need, as views (no copy): its vectors and a sample of its output."""

    a: torch.Tensor
    s: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor | None  # ~SHIFT_SAMPLE rows of the block's output (autocast only; None: no shift test)


def block_inputs(blocks: Sequence[tuple[int, int, int]], vecs: Sequence[torch.Tensor],
                 y: torch.Tensor | None) -> list[BlockInputs]:
    """Detached views of each adapted block's (a, s, t) and, given the layer's output y, its sampled rows.

    ``blocks``: ``(start, stop, j)`` per output block, ``j`` its vector triple in ``vecs`` (-1: frozen).
    Detached, so that a decision holds no reference to the autograd graph that owns it.
    """
    ys = None if y is None else y.detach()[:: max(1, y.shape[0] // SHIFT_SAMPLE)]
    return [BlockInputs(*(v.detach() for v in vecs[3 * j : 3 * j + 3]), None if ys is None else ys[:, start:stop])
            for start, stop, j in blocks if j >= 0]


def statistics(blocks: Sequence[BlockInputs]) -> torch.Tensor:
    """Every block's decision statistics in one tensor (float32, or the vectors' dtype if wider), in at most
    six operators whatever the number of blocks (three without a y sample).

    Layout: max 1/|s| of each block, max 1/|a| of each block, then for the blocks with a y sample Σ|t|
    and Σ|y - t|. ``min |s| < tol`` is ``max 1/|s| > 1/tol`` (the foreach kernels have a max-norm, no
    min); a zero in a is an infinite max 1/|a| (so is a subnormal |a| whose reciprocal overflows:
    that block takes the division-free route for ∂a as well).
    """
    # the widest float dtype present, at least float32 (finfo, not torch.promote_types: that one is dispatched)
    dtypes = {v.dtype for b in blocks for v in b if v is not None} | {torch.float32}
    acc = max(dtypes, key=lambda d: torch.finfo(d).bits)
    scales = [b.s for b in blocks] + [b.a for b in blocks]
    parts = list(torch._foreach_norm(torch._foreach_reciprocal(scales), math.inf, dtype=acc))
    shifted = [b for b in blocks if b.y is not None]
    if shifted:
        t = [b.t for b in shifted]
        parts += torch._foreach_norm(t, 1, dtype=acc)
        parts += torch._foreach_norm(torch._foreach_sub([b.y for b in shifted], t), 1, dtype=acc)
    return torch.stack(parts)


class Decision:
    """The flags one autograd node will need in its backward; ``get()`` returns them as bools, two per
    adapted block: recompute ∂s, a zero in a."""

    __slots__ = ("blocks", "tol", "_owner", "_value", "__weakref__")

    def __init__(self, blocks: list[BlockInputs], tol: float, owner: "HostReads"):
        self.blocks: list[BlockInputs] | None = blocks
        self.tol = tol  # a |s| under it is degenerate
        self._owner = owner
        self._value: list[bool] | None = [] if not blocks else None

    def get(self) -> list[bool]:
        if self._value is None:
            self._owner.resolve()
        return self._value  # type: ignore[return-value]

    def take(self, inv_s: list[float], inv_a: list[float], shift: list[float], rest: list[float]) -> None:
        """Decide from this node's statistics (read); drop the views."""
        flags: list[bool] = []
        k = 0
        for i, b in enumerate(self.blocks):  # type: ignore[arg-type]
            recompute = inv_s[i] > 1.0 / self.tol
            if b.y is not None:
                recompute = recompute or shift[k] * b.y.shape[0] > SHIFT_SHARE * rest[k]
                k += 1
            flags += [recompute, inv_a[i] == math.inf]
        self._value, self.blocks = flags, None


class HostReads:
    """The pending decisions of one model's HUT layers, computed and read together (one read per device).

    ``reads`` counts the reads made (tests and ``python -m hut.bench.host_reads`` compare it with the
    dispatcher's count). Not saved with the model: a copy or an unpickled model starts empty.
    """

    def __init__(self) -> None:
        self._pending: list[weakref.ref[Decision]] = []
        self._lock = threading.Lock()
        self.reads = 0

    def __reduce__(self):
        return (HostReads, ())  # a copy (deepcopy, pickle) starts empty: pending decisions belong to live graphs

    def defer(self, blocks: Sequence[tuple[int, int, int]], vecs: Sequence[torch.Tensor], tol: float,
              y: torch.Tensor | None = None) -> Decision:
        """Register a forward's decisions (:func:`block_inputs`; ``y`` given: the shift test too); nothing
        is computed or read here."""
        decision = Decision(block_inputs(blocks, vecs, y), tol, self)
        if decision._value is not None:  # no adapted block: nothing to decide
            return decision
        with self._lock:
            if len(self._pending) >= PRUNE_AT:
                self._pending = [r for r in self._pending if r() is not None]
            self._pending.append(weakref.ref(decision))
        return decision

    def resolve(self) -> None:
        """Decide every pending decision: per device, :func:`statistics` of all of them and one ``tolist()``."""
        with self._lock:
            live = [d for d in (r() for r in self._pending) if d is not None and d._value is None]
            self._pending.clear()
            by_device: dict[torch.device, list[Decision]] = {}
            for d in live:
                by_device.setdefault(d.blocks[0].s.device, []).append(d)  # type: ignore[index]
            for group in by_device.values():
                blocks = [b for d in group for b in d.blocks]  # type: ignore[union-attr]
                values = statistics(blocks).tolist()  # the one read
                self.reads += 1
                n, n_shift = len(blocks), sum(b.y is not None for b in blocks)
                inv_s, inv_a = values[:n], values[n : 2 * n]
                shift, rest = values[2 * n : 2 * n + n_shift], values[2 * n + n_shift :]
                i = k = 0
                for d in group:
                    m, m_shift = len(d.blocks), sum(b.y is not None for b in d.blocks)  # type: ignore[arg-type]
                    d.take(inv_s[i : i + m], inv_a[i : i + m], shift[k : k + m_shift], rest[k : k + m_shift])
                    i, k = i + m, k + m_shift
