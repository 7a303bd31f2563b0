"""A learning-rate search's selection file: where it lives beside the runs, its schema, written and read.

::

    <results_dir>/<experiment>/<task>/<method_key>/<model>/[<overrides>/]tune-<protocol>.json

One file per cell of an experiment, search protocol (``configs/tune/<protocol>.yaml``) and override
variant of the search's runs (e.g. ``trainer.max_steps=2``, the folder the row's own learning rate's
runs share): beside the runs it was made from, which it names by their record paths (relative to
``results_dir``, as the results side reads them). It holds the protocol (key, grid, search and final
seeds, the selection split, the rule), each grid point's score per search seed with its mean and
spread, the chosen value, whether it lies at the grid's edge and which value to add, and the final
runs. Written by ``hut.tune`` (:mod:`hut.tune.search`) through the one atomic write; a file that
would change (a grown grid, another choice) keeps the previous one as ``tune-<protocol>.attempt<N>.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from hut.files.atomic import remove_partial_writes, write_json_atomic
from hut.runs.paths import RunPaths
from hut.runtime.provenance import git_sha

SELECTION_SCHEMA = 1
PREFIX = "tune-"
#: where a search chooses (the file's ``selection``), as the outputs name it
SPLIT_LABELS = {"tune": "the tune split", "split_dev": "one half of dev"}


def selection_path(configured: RunPaths, protocol: str) -> Path:
    """The selection file of the cell whose run at the row's own value lives at ``configured``."""
    return configured.dir.parent / f"{PREFIX}{protocol}.json"


def write_selection(path: Path, selection: Mapping[str, Any]) -> Path | None:
    """Write ``selection`` (with the schema and the checkout's commit) at ``path``; a different earlier
    file there is kept as ``<name>.attempt<N>.json`` (returned), an equal one left as it is."""
    body = {"schema": SELECTION_SCHEMA, **selection}
    remove_partial_writes(path.parent)  # a killed writer's temporary file (the runs' own are in their folders)
    kept = None
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        if isinstance(old, dict) and {k: v for k, v in old.items() if k != "git_sha"} == body:
            return None
        n = 1
        while (kept := path.with_name(f"{path.stem}.attempt{n}.json")).exists():
            n += 1
        path.replace(kept)
    write_json_atomic(path, {**body, "git_sha": git_sha()})
    return kept


def read_selections(results_dir: str | Path) -> list[tuple[str, dict]]:
    """Every selection file under ``results_dir`` (earlier attempts left out): (its path relative to
    ``results_dir``, its content), by path; a file that is not a selection of a known schema is left
    out with the reason as its content's ``problem``."""
    root = Path(results_dir)
    out = []
    for p in sorted(root.rglob(f"{PREFIX}*.json")) if root.is_dir() else []:
        if ".attempt" in p.name:
            continue
        rel = p.relative_to(root).as_posix()
        try:
            sel = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            out.append((rel, {"problem": f"unreadable selection file ({type(e).__name__})"}))
            continue
        if not isinstance(sel, dict) or sel.get("schema") != SELECTION_SCHEMA:
            out.append((rel, {"problem": f"not a selection file of schema {SELECTION_SCHEMA}"}))
            continue
        out.append((rel, sel))
    return out
