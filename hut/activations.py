"""The bytes autograd saves for the backward pass: what a training step's activations cost in memory.

Counted with ``torch.autograd.graph.saved_tensors_hooks`` while the forward pass runs: every tensor
autograd packs, each storage once (a view and its base share one), the storages of ``exclude`` (the
weights, which are in memory anyway) not at all. Used by the plan's memory estimate
(:mod:`hut.memory`) and the cost benchmark (:mod:`hut.bench.steps`).
"""
from __future__ import annotations

from typing import Iterable

import torch


class SavedTensors:
    """``with SavedTensors(model.parameters()) as saved: loss = model(**batch).loss`` -> ``saved.bytes``."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.seen: dict[int, int] = {}  # storage pointer -> bytes
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    @property
    def bytes(self) -> int:
        return sum(self.seen.values())

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # a tensor without a storage of its own (sparse, nested)
            return t
        if st.data_ptr() not in self.exclude:
            self.seen[st.data_ptr()] = st.nbytes()
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> "SavedTensors":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
