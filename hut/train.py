"""``python -m hut.train [overrides]`` - one run; ``-m`` for a Hydra multirun.

    python -m hut.train task=mrpc method=hut model=roberta_large seed=0
    python -m hut.train -m experiment=table1            # the paper's Table 1 sweep
    python -m hut.train experiment=debug                # seconds, tiny model

Errors in one job of a multirun are recorded (status failed) and the sweep goes on.
"""
from __future__ import annotations

import os
import sys
import traceback

import hydra
from omegaconf import DictConfig, OmegaConf

from hut import experiments, identity, records
from hut.config import CONFIG_DIR, split_own
from hut.runtime.console import quiet_libraries
from hut.runtime.device import DeviceUnavailable

# configs/train.yaml names Hydra's own run folder by the command's overrides: ${hut_dirname:...} keeps
# that name one path component of bounded length (hut.identity.short_name).
OmegaConf.register_new_resolver("hut_dirname", lambda text: identity.short_name(str(text), 120), replace=True)


def _validate(cfg: DictConfig) -> None:
    """Checks that Hydra's strict mode cannot make (values, not keys), each naming the key."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ValueError(f"seed must be an integer, got {cfg.seed!r}")
    r = cfg.method.get("r")
    if r is not None and (not isinstance(r, int) or r <= 0):
        raise ValueError(f"method.r must be a positive integer, got {r!r}")
    for k in ("epochs", "batch_size", "grad_accum"):
        v = cfg.trainer.get(k)
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"trainer.{k} must be a positive integer, got {v!r}")
    if not cfg.trainer.lr or cfg.trainer.lr <= 0:
        raise ValueError(f"trainer.lr must be positive, got {cfg.trainer.lr!r}")
    if cfg.data.source not in ("local", "hub"):
        raise ValueError(f"data.source must be 'local' or 'hub', got {cfg.data.source!r}")
    if cfg.data.source == "local":
        d = cfg.data.get("dir")
        if not d:
            raise FileNotFoundError("data.dir is not set: export HUT_DATA=/path/to/data (GLUE/E2E layout, "
                                    "see README 'Data'), pass data.dir=..., or use data.source=hub")
        if not os.path.isdir(d):
            raise FileNotFoundError(f"data.dir={d}: no such directory (set HUT_DATA or data.dir)")


def _is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


def _pin_gpu(cfg: DictConfig) -> None:
    """Parallel local jobs (joblib launcher) on a multi-GPU machine: one GPU per job, round-robin."""
    if cfg.trainer.get("gpu_pin", "auto") != "auto" or not _is_multirun():
        return
    import torch
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    if "joblib" not in str(hc.launcher.get("_target_", "")) or not torch.cuda.is_available():
        return
    n = torch.cuda.device_count()
    if n > 1:
        torch.cuda.set_device(int(hc.job.num) % n)


def _overrides() -> list[str]:
    """This job's command-line overrides (a multirun job's include its sweep values)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _record_crash(cfg: DictConfig, err: BaseException, overrides: list[str]) -> None:
    """A multirun job that crashed leaves a failed record (never over a finished one) and the sweep goes on."""
    from hut.trainer import run_paths

    try:
        container = records.scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
        variant = identity.override_variant(container, overrides)
        paths = run_paths(cfg, variant)
        if paths.record.exists() and records.read_record(paths.record).get("status") != "running":
            return  # finished, or the trainer recorded the failure itself
        rec = records.new_record(container, paths, fingerprint=identity.fingerprint(container), overrides=variant,
                                 status="failed", error={"reason": f"{type(err).__name__}: {err}", "step": None})
        records.write_json_atomic(paths.record, rec)
    except Exception:  # noqa: BLE001 - the job's own error is what the user needs; this is best effort
        pass


def check_rows(argv: list[str]) -> str | None:
    """What Hydra would say badly about ``row``, said plainly (None: nothing to say). Hydra lists no
    options for a nested group (``row=table1/hutt``, or an experiment run without ``row=``)."""
    args, _ = split_own([a for a in argv if "=" in a and not a.startswith("-")], ("experiment", "row"), "hut.train")
    exp, rows = args.get("experiment"), args.get("row")
    if exp is not None:
        try:
            experiments.experiment_file(exp)
        except ValueError as e:
            return str(e)
    swept = experiments.sweep(exp).get("row", []) if exp else []
    if rows is None:
        needs = exp and "row" in experiments.required_groups(exp)
        multirun = any(a in ("-m", "--multirun") for a in argv)
        if needs and not multirun:
            return (f"experiment={exp} needs a row: row=ROW with ROW one of {', '.join(swept)} "
                    f"(or -m to sweep them all)")
        return None
    for row in rows.split(","):
        if not (CONFIG_DIR / "row" / f"{row}.yaml").is_file():
            group = row.split("/")[0]
            known = swept or sorted(f"{group}/{p.stem}" for p in (CONFIG_DIR / "row" / group).glob("*.yaml"))
            known = known or sorted(f"{p.parent.name}/{p.stem}" for p in (CONFIG_DIR / "row").glob("*/*.yaml"))
            return f"unknown row '{row}'; known: {', '.join(known)}"
    return None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig):
    from hut.trainer import run

    overrides = _overrides()
    quiet_libraries(bool(cfg.trainer.get("progress", True)))
    try:
        _validate(cfg)
        _pin_gpu(cfg)
        rec = run(cfg, overrides)
        best = rec.get("best") or {}
        return float(best.get("score", best.get("BLEU", 0.0)) or 0.0)
    except Exception as e:  # a clear one-line error; the full traceback only with HUT_DEBUG=1
        if os.environ.get("HUT_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        if isinstance(e, DeviceUnavailable):  # the machine, not this job: every job of a sweep would fail alike
            sys.exit(2)
        if isinstance(e, (ValueError, FileNotFoundError, PermissionError, KeyError)) and not _is_multirun():
            sys.exit(2)
        if not (isinstance(e, OSError) and e.errno in records.DISK_ERRORS):  # a full disk: leave the files as they are
            _record_crash(cfg, e, overrides)
        if not _is_multirun():
            sys.exit(1)
        return None


if __name__ == "__main__":
    if (problem := check_rows(sys.argv[1:])) is not None:
        sys.exit(f"error: {problem}")
    main()
