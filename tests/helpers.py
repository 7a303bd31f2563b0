"""Shared test helpers: compose a run config the way `python -m hut.train` does."""
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_cfg(*overrides: str, results_dir=None, data_dir=FIXTURES):
    ov = ["experiment=debug", "trainer.progress=false", f"data.dir={data_dir}", *overrides]
    if results_dir is not None:
        ov.append(f"results_dir={results_dir}")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=ov)
