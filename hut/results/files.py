"""Writing the results' files: only when their bytes change, atomically; and the records they were
built from, shipped beside them.

:func:`ship_records` copies, for every run the outputs read, the files that let a reader check a
figure from a fresh clone: the record (``metrics.json``: metrics per epoch, the resolved config,
git sha, versions), the per-epoch dev predictions and the task's scoring files (E2E references and
outputs, SQuAD predictions) and the learning-rate searches' selection files. Never weights,
checkpoints or locks. The copies land under ``<out_dir>/records/`` at the path the run had under its
``results_dir``. :func:`prune_records` then removes the shipped files of the same experiment folders
that no run read this time (a run deleted or moved out of ``results_dir``), so aggregating that folder
again gives the same tables.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from hut.files.atomic import write_atomic
from hut.runs import DEV_PREDICTIONS
from hut.runs.tuning import PREFIX as SELECTION_PREFIX

RECORDS_DIR = "records"
#: a run folder's files that are shipped with the outputs (anything else stays behind)
SHIPPED = ("metrics.json", DEV_PREDICTIONS, "references.txt", "predictions.txt", "predictions.json")


def shipped_name(name: str) -> bool:
    """Whether a file of this name is one the outputs ship: a run's :data:`SHIPPED` file or a search's
    selection file."""
    return name in SHIPPED or (name.startswith(SELECTION_PREFIX) and name.endswith(".json"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write only if the bytes differ (a rebuild leaves unchanged files untouched), atomically."""
    if path.exists() and path.read_bytes() == data:
        return
    write_atomic(path, data)


def ship_records(results_dir: str | Path, run_paths: Iterable[str], out_dir: str | Path,
                 files: Iterable[str] = ()) -> list[Path]:
    """Copy the shipped files of each run (``run_paths``: record paths relative to ``results_dir``),
    and ``files`` (other paths relative to it: a search's selection files), to ``<out_dir>/records/``;
    the paths written. A results_dir that *is* that folder ships nothing."""
    root, dest_root = Path(results_dir).resolve(), (Path(out_dir) / RECORDS_DIR).resolve()
    if root == dest_root:
        return []
    written = []
    for rel in sorted(set(files)):
        if (root / rel).is_file():
            write_bytes(dest_root / rel, (root / rel).read_bytes())
            written.append(dest_root / rel)
    for rel in sorted(set(run_paths)):
        src_dir = (root / rel).parent
        for name in SHIPPED:
            src = src_dir / name
            if src.is_file():
                dest = dest_root / Path(rel).parent / name
                write_bytes(dest, src.read_bytes())
                written.append(dest)
    return written


def prune_records(out_dir: str | Path, shipped: Iterable[Path], run_paths: Iterable[str]) -> list[Path]:
    """Remove the shipped files under ``<out_dir>/records/<folder>/`` that this aggregation did not ship,
    for each top folder (the runs' experiment folder) of ``run_paths``; the paths removed. Only
    shipped names (:data:`SHIPPED`, selection files) are touched; folders of experiments not read this time are left as they are."""
    dest_root = (Path(out_dir) / RECORDS_DIR).resolve()
    keep = {Path(p).resolve() for p in shipped}
    removed = []
    for top in sorted({Path(rel).parts[0] for rel in run_paths}):
        folder = dest_root / top
        for p in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if p.is_file() and shipped_name(p.name) and p.resolve() not in keep:
                p.unlink()
                removed.append(p)
        for d in sorted((d for d in folder.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if not any(d.iterdir()):
                d.rmdir()
    return removed
