"""``python -m hut.train [overrides]`` - one run; ``-m`` for a Hydra multirun.

    python -m hut.train task=mrpc method=hut model=roberta_large seed=0
    python -m hut.train -m experiment=table1            # the paper's Table 1 sweep
    python -m hut.train experiment=debug                # seconds, tiny model

Before Hydra starts, the command's config (a sweep's first job) is composed and checked against its
schema (:func:`check_config`): a bad key or value is one line naming it, and nothing is written.
Errors in one job of a multirun are printed on one line (a run that failed once its folder existed
has its failed record, written by the run store) and the sweep goes on.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Sequence

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hut.config import experiments
from hut.runs import identity
from hut.config import CONFIG_DIR, compose, composition_error, split_own
from hut.files.atomic import is_disk_error
from hut.runtime.device import DeviceUnavailable
from hut.schema import validate
from hut.trainer import run

# configs/train.yaml names Hydra's own run folder by the command's overrides: ${hut_dirname:...} keeps
# that name one path component of bounded length (hut.runs.identity.short_name).
OmegaConf.register_new_resolver("hut_dirname", lambda text: identity.short_name(str(text), 120), replace=True)
# Hydra's own command-line flags that take a value (not overrides)
_FLAG_VALUES = ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--cfg", "-c",
                "--package", "-p", "--info", "-i", "--experimental-rerun")


def _is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not inside a Hydra app (a run composed in code)
        return False


def _pin_gpu(cfg: DictConfig) -> None:
    """Parallel local jobs (joblib launcher) on a multi-GPU machine: one GPU per job, round-robin."""
    if cfg.trainer.get("gpu_pin", "auto") != "auto" or not _is_multirun():
        return
    hc = HydraConfig.get()
    if "joblib" not in str(hc.launcher.get("_target_", "")) or not torch.cuda.is_available():
        return
    n = torch.cuda.device_count()
    if n > 1:
        torch.cuda.set_device(int(hc.job.num) % n)


def check_rows(argv: list[str]) -> str | None:
    """What Hydra would say badly about ``row``, said plainly (None: nothing to say). Hydra lists no
    options for a nested group (``row=table1/hutt``, or an experiment run without ``row=``)."""
    args, _ = split_own(_overrides(argv), ("experiment", "row"), "hut.train")
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
    for row in sweep_values("row", rows) or []:  # glob(table1/h*): Hydra matches it against the options
        if not (CONFIG_DIR / "row" / f"{row}.yaml").is_file():
            group = row.split("/")[0]
            known = swept or sorted(f"{group}/{p.stem}" for p in (CONFIG_DIR / "row" / group).glob("*.yaml"))
            known = known or sorted(f"{p.parent.name}/{p.stem}" for p in (CONFIG_DIR / "row").glob("*/*.yaml"))
            return f"unknown row '{row}'; known: {', '.join(known)}"
    return None


def check_sweeper(argv: list[str]) -> str | None:
    """A search space (``interval(...)``) under ``-m`` with Hydra's basic sweeper, which cannot enumerate
    one, said in one line (None: nothing to say). A sweeper chosen on the command line or by the
    experiment file (``override /hydra/sweeper: ...``) is left to read it."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return None
    given = OverridesParser.create().parse_overrides(_overrides(argv))
    spaces = [o.input_line for o in given if o.is_sweep_override() and not o.is_discrete_sweep()]
    exp = next((str(o.value()) for o in given if o.key_or_group == "experiment"), None)
    chosen = any(a.split("=", 1)[0].lstrip("+~") == "hydra/sweeper" for a in argv) or (
        exp is not None and "sweeper" in experiments.overridden_hydra_groups(exp))
    if not spaces or chosen:
        return None
    return (f"{spaces[0]}: Hydra's basic sweeper cannot enumerate a search space; list the values "
            f"({spaces[0].split('=', 1)[0]}=a,b,c) or choose a sweeper that samples it (hydra/sweeper=NAME)")


def check_config(argv: list[str]) -> str | None:
    """What is wrong with this command's config, in one line naming the key (None: nothing).

    The config of the command's first job (each sweep at its first value, an experiment's own sweep
    included under ``-m``) is composed as Hydra will compose it and checked by :func:`hut.schema.validate`.
    """
    overrides = _overrides(argv)
    try:
        overrides = first_job(argv)
        cfg = compose(overrides)
    except Exception as e:  # noqa: BLE001 - Hydra's parser and composition errors, said in one line
        return composition_error(e, overrides)
    try:
        validate(cfg)
    except (ValueError, FileNotFoundError) as e:
        return str(e)
    return None


def _overrides(argv: Sequence[str]) -> list[str]:
    """The ``key=value`` overrides of a command line (Hydra's flags and their values left out)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a.startswith("-"):
            skip = a in _FLAG_VALUES
        elif ("=" in a or a.startswith("~")) and not a.split("=", 1)[0].lstrip("+~").startswith("hydra"):
            out.append(a)  # key=value, +key=value, ~key=value or ~key (a deletion)
    return out


def first_job(argv: Sequence[str]) -> list[str]:
    """The overrides of a command's first job: every sweep (``a,b``, ``range(...)``) at its first value,
    and under ``-m`` an experiment's own ``hydra.sweeper.params`` at theirs.

    A sweep that cannot be enumerated (``interval(...)``, ``tag(log, interval(...))``: a search space
    for a sweeper such as Optuna's; ``glob(...)``) is left out of the checked job, which then checks
    every other key; the sweeper reads it, and the trainer checks each job it launches.
    """
    parser = OverridesParser.create()
    given = parser.parse_overrides(_overrides(argv))
    out = [line for o in given if (line := _first_value(o)) is not None]
    exp = next((o.value() for o in given if o.key_or_group == "experiment"), None)
    if exp and any(a in ("-m", "--multirun") for a in argv):
        named = {o.key_or_group for o in given}
        own = parser.parse_overrides([f"{k}={','.join(values)}" for k, values in experiments.sweep(str(exp)).items()
                                      if k not in named and values])
        out += [line for o in own if (line := _first_value(o)) is not None]
    return out


def _first_value(o) -> str | None:
    """A parsed override at its sweep's first value (itself if it sweeps nothing); None when its sweep
    cannot be enumerated."""
    if not o.is_sweep_override():
        return o.input_line
    key = o.input_line.split("=", 1)[0]
    value = o.value()
    if isinstance(value, Glob):  # as Hydra's sweeper: the group's options (files directly in its folder)
        group = CONFIG_DIR / o.key_or_group
        names = value.filter(sorted(p.stem for p in group.glob("*.yaml"))) if group.is_dir() else []
        return f"{key}={names[0]}" if names else None
    try:
        return f"{key}={next(iter(o.sweep_string_iterator()))}"
    except (HydraException, StopIteration):  # "Can only enumerate CHOICE and RANGE sweeps": interval(...)
        return None


def sweep_values(key: str, value: str) -> list[str] | None:
    """The values a command-line ``key=value`` stands for (``a,b`` -> [a, b]; ``choice(a,b)`` too); None
    for a sweep that cannot be enumerated (``glob(...)``, ``interval(...)``): Hydra resolves it."""
    o = OverridesParser.create().parse_override(f"{key}={value}")
    if not o.is_sweep_override():
        return [value]
    if isinstance(o.value(), Glob):
        return None
    try:
        return list(o.sweep_string_iterator())
    except HydraException:
        return None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig):
    overrides = list(HydraConfig.get().overrides.task)  # a multirun job's include its sweep values
    try:
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
        if not _is_multirun():
            usage = isinstance(e, (ValueError, FileNotFoundError, PermissionError, KeyError)) and not is_disk_error(e)
            sys.exit(2 if usage else 1)
        return None  # the sweep goes on (the run store recorded the failure where the run had a folder)


if __name__ == "__main__":
    if (problem := check_rows(sys.argv[1:]) or check_sweeper(sys.argv[1:]) or check_config(sys.argv[1:])) is not None:
        sys.exit(f"error: {problem}")
    main()
