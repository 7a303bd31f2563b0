"""The HUT paper's data: its published figures, and the settings every paper row runs with.

Two kinds of file, one job each:

* ``hut/hut_2409.13501_tables.yaml``: every number the paper prints in Tables 1-7 (scores
  with their ±, parameter columns, Table 2's GFLOPs, Tables 6/7's hyperparameters), a copy of
  ``../shared/paper/hut_2409.13501_tables.yaml`` that ``tests/test_paper.py`` holds equal to it.
  The tables print the paper's rows from it (:func:`published`), and the composition test checks
  every sweep against it.
* ``configs/paper/table6.yaml`` (Table 1's rows, GLUE) and ``configs/paper/table7.yaml`` (Table 3's
  rows, E2E): the settings each row is trained with, the paper's own (Tables 6 and 7) and, for the
  rows the paper copied from earlier work, the source's, each with its citation (``cite``) and a
  note wherever the source gives no value and the suite chose one (``notes``). Configs read them
  through the ``${paper:<file>/<row>,<key>[,<task>]}`` resolver (registered by :mod:`hut.config`):
  a missing file, row, key or task is an error that names them, when the config is resolved, i.e.
  before anything runs.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
#: the model each paper experiment runs on (its tables' rows are about this model)
PAPER_MODEL = {"table1": "roberta_large", "table3": "gpt2_medium", "table4": "roberta_large",
               "table5": "roberta_large"}
PUBLISHED_FILE = Path(__file__).resolve().parents[1] / "hut_2409.13501_tables.yaml"
SETTINGS_DIR = ROOT / "configs" / "paper"
RESERVED = ("cite", "notes", "reported")  # keys of a settings row that are documentation, not settings


class PaperSettingError(ValueError):
    """A paper row's setting that the configs ask for and the settings file does not have."""


@functools.lru_cache(maxsize=None)
def _yaml(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def published(path: str | Path = PUBLISHED_FILE) -> dict:
    """The paper's published figures (the layout of ``hut_2409.13501_tables.yaml``)."""
    return _yaml(str(Path(path).resolve()))


def published_rows(table: str, path: str | Path = PUBLISHED_FILE) -> list[dict]:
    return list((published(path).get(table) or {}).get("rows") or [])


def settings_file(name: str) -> dict:
    p = SETTINGS_DIR / f"{name}.yaml"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in SETTINGS_DIR.glob("*.yaml")))
        raise PaperSettingError(f"no paper settings file configs/paper/{name}.yaml (known: {known})")
    return _yaml(str(p))


def setting(row: str, key: str, task: str | None = None) -> Any:
    """``configs/paper/<file>.yaml``'s value of ``key`` for ``row`` (``<file>/<row>``), per task if given.

    A value given per task (a mapping task -> value) needs ``task``; a single value is the same for
    every task. Anything missing raises :class:`PaperSettingError` naming the row, the key and the task.
    """
    name, sep, row_name = str(row).partition("/")
    if not sep:
        raise PaperSettingError(f"paper setting {row!r}: expected <file>/<row>, e.g. table6/hut")
    data = settings_file(name)
    rows: Mapping[str, Any] = data.get("rows") or {}
    where = f"configs/paper/{name}.yaml"
    if row_name not in rows:
        raise PaperSettingError(f"{where} has no row {row_name!r} (rows: {', '.join(rows)})")
    r = rows[row_name]
    if key not in r or key in RESERVED:
        have = ", ".join(k for k in r if k not in RESERVED)
        raise PaperSettingError(f"{where}: row {row_name!r} has no setting {key!r} (it has: {have})")
    value = r[key]
    if isinstance(value, Mapping):
        if task is None:
            raise PaperSettingError(f"{where}: row {row_name!r} gives {key!r} per task; name the task")
        if str(task) not in value:
            raise PaperSettingError(f"{where}: row {row_name!r} has no {key!r} for task {task!r} "
                                    f"(it gives {', '.join(value)})")
        return value[str(task)]
    return value


def register_resolver() -> None:
    """``${paper:table6/hut,lr,${task.name}}`` in any config (idempotent)."""
    if not OmegaConf.has_resolver("paper"):
        OmegaConf.register_new_resolver("paper", lambda row, key, task=None: setting(row, key, task))
