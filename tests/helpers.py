"""Shared test helpers: compose a run config the way `python -m hut.train` does."""
import importlib.util
import os
from pathlib import Path

import pytest

from hut.config import compose

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_cfg(*overrides: str, results_dir=None, data_dir=FIXTURES):
    ov = ["experiment=debug", "trainer.progress=false", f"data.dir={data_dir}", *overrides]
    if results_dir is not None:
        ov.append(f"results_dir={results_dir}")
    return compose(ov)


def _real_data_dir() -> Path | None:
    """The real data (``$HUT_DATA``, else ``../shared/data`` beside the checkout), or None."""
    for d in (os.environ.get("HUT_DATA"), ROOT.parent / "shared" / "data"):
        if d and (Path(d) / "glue").is_dir():
            return Path(d)
    return None


REAL = _real_data_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="real GLUE data not found (set HUT_DATA to ../shared/data)")


def needs_package(*modules: str):
    """Skip unless the demo's model packages are installed (``make install`` installs them)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)} (make install)")
