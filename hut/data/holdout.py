"""The tune split: a seeded slice of the training split held out for choosing hyperparameters.

:func:`hold_out` splits a training split's examples into the pool the run may train on and the held
out ``tune`` slice, which is scored at the last epoch and never trained on nor reported
(``data.tune_samples``; docs/tuning.md). The slice depends only on the split's examples, their
number and ``data.subset_seed``: every method, learning rate and run seed of a task holds out the
same examples, and the hub and local layouts (the same examples in the same order,
:mod:`hut.data.glue`) give the same slice. ``data.max_train_samples`` then draws its subset from the
pool, so the two never overlap.
"""
from __future__ import annotations

import random
from typing import Any, Sequence


def hold_out(items: Sequence[Any], n: int, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(the pool, the held-out slice of ``n`` items), each in the original order.

    The slice is the first ``n`` of a shuffle seeded by ``seed`` on a stream of its own (a string
    seed, so it is not :func:`hut.data.glue.subsample`'s shuffle of the same seed). ``n`` must leave
    at least one item to train on.
    """
    items = list(items)
    n = int(n)
    if not 0 < n < len(items):
        raise ValueError(f"data.tune_samples={n} must be at least 1 and below the training split's {len(items)} "
                         f"examples (it holds them out of training)")
    idx = list(range(len(items)))
    random.Random(f"tune-split-{int(seed)}").shuffle(idx)
    held = set(idx[:n])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]
