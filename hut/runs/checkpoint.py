"""A run's checkpoint (``checkpoint.pt``): written atomically, read back only by the run that wrote it.

The file holds plain tensors and data (loaded with ``weights_only=True``: nothing in it is executed),
its format and the fingerprint of the run's config. A checkpoint of another config or an older format
is removed and the run starts over; a file that is not such a checkpoint is refused (:class:`BadCheckpoint`).
"""
from __future__ import annotations

import pickle
from typing import Any, Mapping

import torch

from hut.files.atomic import write_atomic
from hut.runs.paths import RunPaths

CHECKPOINT_FORMAT = 2


class BadCheckpoint(ValueError):
    """A checkpoint that is not plain tensors and data (or is unreadable): refused, never executed."""


def save_checkpoint(paths: RunPaths, fingerprint: str, state: Mapping[str, Any]) -> None:
    """Write ``state`` (trainable parameters, optimiser, scheduler, RNG, data position) for this fingerprint."""
    full = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, **state}
    write_atomic(paths.checkpoint, lambda f: torch.save(full, f))


def load_checkpoint(paths: RunPaths, fingerprint: str) -> dict | None:
    """This run's checkpoint; None when there is none or it is another config's (then removed)."""
    if not paths.checkpoint.exists():
        return None
    try:
        ck = torch.load(paths.checkpoint, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadCheckpoint(
            f"{paths.checkpoint}: refused: it is not a checkpoint of plain tensors and data written by this "
            f"suite ({first}). Nothing in it was run. Delete the file to start the run over.") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or ck.get("fingerprint") != fingerprint:
        why = "another config" if isinstance(ck, dict) and ck.get("format") == CHECKPOINT_FORMAT else "an older format"
        print(f"[restart] {paths.key}: the checkpoint is of {why}; starting over")
        paths.checkpoint.unlink(missing_ok=True)
        return None
    return ck


def remove_checkpoint(paths: RunPaths) -> None:
    paths.checkpoint.unlink(missing_ok=True)
