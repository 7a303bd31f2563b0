"""Run identity: everything that can change a run's result, as a fingerprint, and its own folder.

A run's record lives at ``<results_dir>/<experiment>/<task>/<method_key>/<model>/[<variant>/]seed=<s>/``.
Two things decide whether a finished record there is *this* run's result:

* its **fingerprint**: a digest of :func:`result_config`, the resolved config without the keys
  that cannot change the result (:data:`EXCLUDED`, each with its reason), without the seed (which
  is in the path) and without the keys whose null default changes nothing (:data:`NULL_NEUTRAL`).
  A finished record with the same fingerprint is skipped; a record at the same
  path with another fingerprint is never reused (``hut.runs.store`` stops with the differing keys);
* its **variant**: the overrides of a command that change the result relative to the experiment's
  own config (:func:`override_variant`), e.g. ``trainer.lr=0.0003``, give the run its own folder
  (:func:`variant_folder`). So ``python -m hut.train -m experiment=table1 trainer.lr=1e-4,3e-4`` writes
  two records, each with its own lr, and the aggregator reports them as two rows. The experiment's
  own choices (``experiment``, ``row``, ``task``, ``method``, ``model``, ``seed`` and every key
  its ``hydra.sweeper.params`` sweeps, such as Table 5's ``method.r``) are the run's identity, not a
  variant.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from hut.config import experiments
from hut.config import compose

#: dotted key -> why it cannot change the result (and so is not part of the fingerprint)
EXCLUDED: dict[str, str] = {
    "seed": "in the run's path; the fingerprint names the configuration that the seeds of a cell share",
    "results_dir": "where records are written",
    "force": "whether to rerun a finished run",
    "keep_checkpoint": "whether the last checkpoint is kept",
    "logger": "where metrics are sent (wandb or nowhere)",
    "trainer.progress": "progress bars",
    "trainer.log_every": "how often the loss is logged",
    "trainer.checkpoint_every_steps": "how often a checkpoint is written (a resumed run equals an uninterrupted one)",
    "trainer.device": "where it runs (the record keeps the device)",
    "trainer.gpu_pin": "which GPU of a multi-GPU machine a parallel job uses",
    "data.source": "where the same data is read from (hub and local layouts give identical examples)",
    "data.dir": "where the local copy of the data lies",
    "data.cache_dir": "where tokenised data is cached",
    "model.local_dir": "where the weights lie; what they are (their SHA-256) is in the fingerprint",
    "table": "which table an experiment feeds (hut.results.tables)",
    "paper_row": "which paper row a run reproduces (labels; its settings are in trainer/method/task)",
    "method.label": "how tables name the method",
    "model.label": "how tables name the model",
}
#: dotted key -> why it is left out of the fingerprint while it is null: a key whose null default
#: changes nothing, so the records made before it existed keep their fingerprint (set, it counts)
NULL_NEUTRAL: dict[str, str] = {
    "data.tune_samples": "null holds nothing out: the run trains on the training split as before the key existed",
}
#: override keys that choose *which* run this is rather than how it runs
IDENTITY_KEYS = ("experiment", "row", "task", "method", "model", "seed")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _excluded(key: str) -> bool:
    return any(key == e or key.startswith(e + ".") for e in EXCLUDED)


def result_config(container: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened resolved config restricted to what can change the result."""
    return {k: v for k, v in sorted(flatten(container).items())
            if not _excluded(k) and not (v is None and k in NULL_NEUTRAL)}


def fingerprint(container: Mapping[str, Any], weights: str | None = None) -> str:
    """16 hex digits of the SHA-256 of :func:`result_config` as canonical JSON, with ``weights``: the
    SHA-256 of the pretrained weights the run loads (``hut.models.weights_identity``), so runs of
    different weights never share a fingerprint, and a local copy equal to the hub's shares the hub's."""
    rc = result_config(container)
    if weights:
        rc["model.weights_sha256"] = weights
    text = json.dumps(rc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """dotted key -> (value in a, value in b) where the result configs of two containers differ."""
    ra, rb = result_config(a), result_config(b)
    return {k: (ra.get(k), rb.get(k)) for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)}


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def sweep_keys(experiment: str | None) -> list[str]:
    """The keys an experiment file sweeps (its ``hydra.sweeper.params``; none for a non-experiment)."""
    if not experiment:
        return []
    try:
        return list(experiments.sweep(experiment))
    except ValueError:  # no such experiment file: nothing is swept (composing it fails on its own)
        return []


def override_variant(container: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any] | None:
    """The result-changing keys where this run differs from its experiment's own config, or None.

    ``overrides``: the command line's ``key=value`` overrides (Hydra's ``hydra.overrides.task``, or
    what ``hut.demo`` composes). The run's experiment config is composed again from the overrides
    that choose the run (:data:`IDENTITY_KEYS` and the experiment's sweep keys) and compared with
    ``container``, so an override that restates a default is no variant.
    """
    experiment = next((o.split("=", 1)[1] for o in overrides if _override_key(o) == "experiment"), None)
    identity = set(IDENTITY_KEYS) | set(sweep_keys(experiment))
    chosen = [o for o in overrides if _override_key(o) in identity]
    if len(chosen) == len(overrides):
        return None
    base = compose(chosen)
    diff = differences(container, base)
    return {k: mine for k, (mine, _) in diff.items()} or None


def variant_label(variant: Mapping[str, Any] | None, sep: str = ",") -> str | None:
    """An override variant in full, ``key=value`` joined by ``sep`` in key order (tables name rows by it)."""
    if not variant:
        return None
    return sep.join(f"{k}={json.dumps(v, separators=(',', ':')) if not isinstance(v, str) else v}"
                    for k, v in sorted(variant.items()))


def variant_folder(variant: Mapping[str, Any] | None, max_len: int = 80) -> str | None:
    """A readable folder name for an override variant: ``trainer.lr=0.0003,trainer.epochs=3``.

    Longer than ``max_len``: its start and a digest of the whole (so two variants never share one).
    A folder name only: tables label a variant's row with :func:`variant_label`, never cut.
    """
    if not variant:
        return None
    return short_name(variant_label(variant), max_len)


def short_name(text: str, max_len: int = 80) -> str:
    """``text`` as one folder name: no ``/`` or spaces; longer than ``max_len``, its start and a digest
    of the whole (so two names never share one)."""
    text = text.replace("/", "_").replace(" ", "")
    if len(text) <= max_len:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: max_len - 9]}-{digest}"
