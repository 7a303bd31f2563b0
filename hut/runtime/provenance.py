"""What produced a result: the code's git commit and the versions of the packages a result depends on."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

PACKAGES = ("hut-suite", "torch", "transformers", "peft", "accelerate", "datasets", "hydra-core", "numpy")


def git_sha() -> str | None:
    """The checkout's commit (``-dirty`` with uncommitted changes to tracked files); None outside git."""
    here = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Python's and the given packages' versions (the ones a result depends on)."""
    out = {"python": sys.version.split()[0]}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
