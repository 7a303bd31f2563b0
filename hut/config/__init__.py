"""Composing configs the way ``python -m hut.train`` does, for every entry point.

Every CLI of the suite takes Hydra overrides (``key=value``) and composes ``configs/train.yaml`` with
them, so a key means the same everywhere and a typo is Hydra's strict-mode error naming the key.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from hut.config.paper import register_resolver
from hut.runtime.console import quiet_libraries

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
register_resolver()  # ${paper:table6/hut,lr,${task.name}}: the paper rows' settings (hut/config/paper.py)


CLI_DIR = CONFIG_DIR / "cli"  # the other commands' arguments (aggregate.yaml, ...), apart from the run groups


def compose(overrides: Sequence[str] = (), config_name: str = "train", config_dir: Path = CONFIG_DIR):
    """The composed (unresolved) ``DictConfig`` of ``config_name`` with ``overrides``.

    ``train`` (a run) from ``configs/``; a command's own arguments from ``configs/cli/`` (their keys,
    such as the aggregator's ``experiment``, would otherwise be read as the run's config groups).
    Works inside a running Hydra app (``@hydra.main`` has initialised Hydra, for ``train``) and outside one.
    """
    if GlobalHydra.instance().is_initialized() and config_dir == CONFIG_DIR:
        return hydra_compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def composition_error(err: Exception, overrides: Sequence[str]) -> str:
    """Hydra's composition error as one line naming the key (an unknown key or option, with the known ones)."""
    text = str(err)
    if m := re.search(r"Could not override '([^']+)'", text):
        key = m.group(1)
        parent = key.rpartition(".")[0]
        try:
            rest = compose([o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key])
            node = OmegaConf.select(rest, parent) if parent else rest
            known = ", ".join(sorted(str(k) for k in node.keys()))
        except Exception:  # noqa: BLE001 - the rest does not compose either: name the key alone
            return f"{key}: no such key"
        return f"{key}: no such key; the keys of {parent or 'a run config'} are: {known}"
    if m := re.search(r"Could not find '([^']+)/([^'/]+)'", text):
        group, name = m.groups()
        known = ", ".join(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")))
        return f"unknown {group} '{name}' ({group}={name}); known: {known}"
    return (text.strip().splitlines() or [type(err).__name__])[0]


def load_group(group: str, name: str) -> dict:
    """One file of a config group (``configs/<group>/<name>.yaml``) as a plain dict; a clear error if absent."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        raise ValueError(f"unknown {group} '{name}'; known: {', '.join(known)}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
    cfg.pop("defaults", None)
    return cfg


HELP = ("-h", "--help", "help")  # what asks any command for its usage


def cli_help(name: str) -> str:
    """A command's help, from ``configs/cli/<name>.yaml``: its header comment (the usage line first),
    then its keys as the file gives them, with their defaults and comments."""
    lines = (CLI_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    head = [line[1:].removeprefix(" ") for line in lines[:n]]
    keys = [f"  {line}" for line in lines[n:] if line.strip()]
    return "\n".join([*head, "", f"keys (configs/cli/{name}.yaml; give any as key=value):", *keys])


def cli_options(argv: Sequence[str], name: str, prog: str, usage: str = "") -> dict:
    """A command's arguments: ``configs/cli/<name>.yaml`` composed with ``argv``, resolved to a dict.

    ``-h``, ``--help`` or ``help`` prints :func:`cli_help` and exits 0. A misspelt key or a bad value is
    Hydra's error, shown as one line naming the command. Every command starts here, so the libraries'
    own messages are quieted here too, unless asked for (:func:`hut.runtime.console.quiet_libraries`).
    """
    if any(a in HELP for a in argv):
        print(cli_help(name))
        raise SystemExit(0)
    quiet_libraries()
    try:
        return OmegaConf.to_container(compose(list(argv), name, CLI_DIR), resolve=True)
    except Exception as e:  # noqa: BLE001 - Hydra's override errors: one line (and the usage)
        raise SystemExit(f"{prog}: {str(e).strip().splitlines()[0]}" + (f"\n{usage}" if usage else "")) from None


def split_own(argv: Sequence[str], own: Sequence[str], prog: str, usage: str = "") -> tuple[dict, list[str]]:
    """(this command's own ``key=value`` arguments, the rest): the rest are run overrides, passed on
    to :func:`compose` as they are (Hydra names a bad one). ``-h``, ``--help`` or ``help`` prints
    ``usage`` and exits 0."""
    if any(a in HELP for a in argv):
        print(usage or f"python -m {prog} key=value ...")
        raise SystemExit(0)
    mine: dict[str, str] = {}
    rest: list[str] = []
    for a in argv:
        key, eq, value = a.partition("=")
        if not eq and not a.startswith("~"):  # ~key: a deletion, passed on
            raise SystemExit(f"{prog}: bad argument {a!r} (expected key=value)" + (f"\n{usage}" if usage else ""))
        if key in own:
            mine[key] = value
        else:
            rest.append(a)
    return mine, rest
