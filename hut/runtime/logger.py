"""Experiment loggers: wandb (offline unless asked) or none.

wandb is optional at run time: if it is not importable, or ``logger=none`` / ``logger.mode=disabled``,
runs log nothing and still write their records. Only the resolved run config (already scrubbed of
credential-like keys) is sent; never the environment.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path


class NullLogger:
    def log(self, metrics: dict, step: int) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbLogger:
    def __init__(self, cfg, name: str, group: str, run_dir: Path, config: dict):
        import wandb  # optional at run time (make_logger falls back to none without it) and slow to import

        self._wandb = wandb
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=cfg.get("project", "hut-suite"), entity=cfg.get("entity"), group=group, name=name,
            mode=str(cfg.get("mode", "offline")), dir=str(run_dir), config=config, reinit="finish_previous",
            settings=wandb.Settings(x_disable_stats=True, x_disable_meta=True, console="off"),
        )

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


def make_logger(cfg, name: str, group: str, run_dir: Path, config: dict):
    if cfg is None or cfg.get("name", "none") == "none" or cfg.get("mode") == "disabled":
        return NullLogger()
    try:
        return WandbLogger(cfg, name, group, run_dir, config)
    except ImportError:
        warnings.warn("logger=wandb but wandb is not installed: logging nothing (records are still written)")
        return NullLogger()
