"""Where a run lives: one folder per run, named by what the run is.

::

    <results_dir>/<experiment>/<task>/<method_key>/<model>/[<overrides>/]seed=<s>/
        metrics.json            the record (hut.runs.record), rewritten atomically every epoch
        metrics.attempt<N>.json earlier records kept by force=true
        checkpoint.pt           trainable params, optimiser, scheduler, RNG, data position (while running)
        trainable.safetensors   the trained parameters of a finished run (hut.export.load_run)
        run.lock                the run's lock file (hut.files.lock)
        predictions.txt, references.txt (E2E), predictions.json (SQuAD)
        dev_predictions.jsonl   one line per epoch: what the task predicted on dev (Task.dev_predictions)

``method_key`` is the method name, or ``<method>-<variant>`` for ablation cells (Tables 4, 5).
``<overrides>`` is present only for a run whose command-line overrides change its result relative
to its experiment's own config (:mod:`hut.runs.identity`), e.g. ``trainer.lr=0.0003``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hut.runs.identity import variant_folder

RECORD = "metrics.json"
DEV_PREDICTIONS = "dev_predictions.jsonl"


@dataclass(frozen=True)
class RunPaths:
    results_dir: Path
    experiment: str
    task: str
    method_key: str
    model: str
    seed: int
    overrides: str | None = None  # the override-variant folder (hut.runs.identity.variant_folder), if any

    @property
    def dir(self) -> Path:
        d = Path(self.results_dir) / self.experiment / self.task / self.method_key / self.model
        return (d / self.overrides if self.overrides else d) / f"seed={self.seed}"

    @property
    def record(self) -> Path:
        return self.dir / RECORD

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def lock(self) -> Path:
        return self.dir / "run.lock"

    @property
    def trainable(self) -> Path:
        return self.dir / "trainable.safetensors"

    @property
    def dev_predictions(self) -> Path:
        return self.dir / DEV_PREDICTIONS

    @property
    def key(self) -> str:
        return Path(self.dir).relative_to(self.results_dir).as_posix()


def method_key(method_name: str, variant: str | None) -> str:
    return f"{method_name}-{variant}" if variant else method_name


def run_paths(cfg: Mapping[str, Any], variant: Mapping[str, Any] | None = None) -> RunPaths:
    """The folder of the run ``cfg`` (a composed config or its resolved dict) with override ``variant``."""
    return RunPaths(
        results_dir=Path(str(cfg["results_dir"])), experiment=str(cfg["experiment_name"]),
        task=str(cfg["task"]["name"]), method_key=method_key(str(cfg["method"]["name"]), cfg.get("variant")),
        model=str(cfg["model"]["name"]), seed=int(cfg["seed"]), overrides=variant_folder(variant),
    )


def paths_of_record(rec: Mapping[str, Any], results_dir: str | Path) -> RunPaths:
    """The folder of the run a record under ``results_dir`` describes (from its fields, as
    :func:`run_paths` names it: experiment, task, method and variant, model, override variant, seed)."""
    return RunPaths(results_dir=Path(results_dir), experiment=str(rec["experiment"]), task=str(rec["task"]),
                    method_key=method_key(str(rec["method"]), rec.get("variant")), model=str(rec["model"]),
                    seed=int(rec["seed"]), overrides=variant_folder(rec.get("overrides")))
