"""One device-to-host read per backward for every HUT layer of a model.

HUT's backward takes data-dependent decisions per adapted block (see :mod:`hut.methods.hut.function`):
recompute the pre-scale product where the shift dominates or a scale is degenerate, take ∂a from the
float weight where an input scale is zero. On a GPU, every ``bool()``, ``.item()`` or ``.tolist()`` of
a device tensor stalls the host until the device has caught up; one such read per layer would stall a
RoBERTa-large step 48 times with q and v adapted. So a layer's forward computes its decisions as a
small bool tensor on the device and *defers* them to the :class:`HostReads` its builder gave it (one
per model); the first backward that needs a decision reads every decision pending on that device at
once, in one ``tolist()``, and each layer's backward takes its own share. The forward never reads.

A forward whose backward never runs (an evaluation with gradients on) leaves nothing behind: the
:class:`HostReads` keeps weak references, and a decision dies with its autograd graph. Activation
checkpointing: the non-reentrant kind (transformers' default) re-runs a segment's forward only to
refill saved tensors and keeps the first forward's decisions, so a step still reads once; the
reentrant kind (``use_reentrant=True``) runs each segment's forward and backward anew, one read per
checkpointed segment (measured on a 2-layer RoBERTa: 1 and 2 reads).
"""
from __future__ import annotations

import threading
import weakref

import torch

PRUNE_AT = 256  # pending references kept before the dead ones are dropped


class Decision:
    """The flags one autograd node will need in its backward; ``get()`` returns them as bools."""

    __slots__ = ("flags", "_owner", "_value", "__weakref__")

    def __init__(self, flags: torch.Tensor, owner: "HostReads"):
        self.flags: torch.Tensor | None = flags.reshape(-1)
        self._owner = owner
        self._value: list[bool] | None = None

    def get(self) -> list[bool]:
        if self._value is None:
            self._owner.resolve()
        return self._value  # type: ignore[return-value]


class HostReads:
    """The pending decisions of one model's HUT layers, read together (one read per device).

    ``reads`` counts the reads made (tests and ``python -m hut.bench.host_reads`` compare it with the
    dispatcher's count). Not saved with the model: a copy or an unpickled model starts empty.
    """

    def __init__(self) -> None:
        self._pending: list[weakref.ref[Decision]] = []
        self._lock = threading.Lock()
        self.reads = 0

    def __reduce__(self):
        return (HostReads, ())  # a copy (deepcopy, pickle) starts empty: pending decisions belong to live graphs

    def defer(self, flags: torch.Tensor) -> Decision:
        """Register ``flags`` (a bool tensor on the layer's device); nothing is read here."""
        decision = Decision(flags, self)
        with self._lock:
            if len(self._pending) >= PRUNE_AT:
                self._pending = [r for r in self._pending if r() is not None]
            self._pending.append(weakref.ref(decision))
        return decision

    def resolve(self) -> None:
        """Read every pending decision: one ``tolist()`` per device."""
        with self._lock:
            live = [d for d in (r() for r in self._pending) if d is not None and d._value is None]
            self._pending.clear()
            by_device: dict[torch.device, list[Decision]] = {}
            for d in live:
                by_device.setdefault(d.flags.device, []).append(d)  # type: ignore[union-attr]
            for group in by_device.values():
                values = torch.cat([d.flags for d in group]).tolist()  # type: ignore[misc]  # the one read
                self.reads += 1
                i = 0
                for d in group:
                    n = d.flags.numel()  # type: ignore[union-attr]
                    d._value, d.flags = values[i : i + n], None
                    i += n
