"""Every experiment, row, method, task and model config composes and resolves; the method files set
every key of their typed configs; a missing choice or a misspelt key is a clear error."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hut import experiments
from hut.config import compose

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUP = lambda g: sorted(p.stem for p in (CONFIGS / g).glob("*.yaml"))  # noqa: E731


@pytest.mark.parametrize("experiment", GROUP("experiment"))
def test_every_cell_of_every_experiment_composes_and_resolves(experiment):
    meta = experiments.meta(experiment)
    cells = experiments.cells(experiment)
    for cell in cells:
        cfg = cell.config  # composed as `hut.train -m` composes the job, and resolved
        assert cfg["experiment_name"] == meta["experiment_name"]
        assert cfg["method"]["name"] and cfg["task"]["name"] and cfg["model"]["name"]
    if experiment != "debug":
        assert cells and meta["table"] in ("table1", "table3", "table4", "table5", "figure4", "parts")


@pytest.mark.parametrize("group", ["method", "task", "model", "logger"])
def test_every_group_option_composes(group):
    for option in GROUP(group):
        cfg = OmegaConf.to_container(compose([f"{group}={option}"]), resolve=True)
        if group in ("method", "task", "model"):
            assert cfg[group]["name"] == option


def test_every_row_composes_outside_its_experiment_too():
    rows = sorted(p.relative_to(CONFIGS / "row").with_suffix("").as_posix() for p in (CONFIGS / "row").rglob("*.yaml"))
    assert len(rows) >= 40
    for row in rows:
        task = ["task=e2e"] if row.startswith(("table3", "demo_e2e")) else ["task=mrpc"]
        cfg = OmegaConf.to_container(compose([f"row={row}", *task]), resolve=True)
        assert cfg["method"]["name"]


def test_method_files_set_every_key_of_their_typed_config():
    """configs/method/<name>.yaml and the method's Config dataclass agree key for key (no silent default)."""
    import dataclasses

    from hut.config import load_group
    from hut.methods import METHODS

    assert set(GROUP("method")) == set(METHODS.names())
    for name in METHODS.names():
        Config = METHODS.get(name).Config
        fields = {f.name for f in dataclasses.fields(Config)}
        yaml_cfg = load_group("method", name)
        assert set(yaml_cfg) == fields, name
        # ... and value for value: the dataclass default is what the yaml file says
        parsed, defaults = Config.parse(yaml_cfg), Config(name=name)
        for f in dataclasses.fields(Config):
            if f.name not in ("name", "label"):
                assert getattr(parsed, f.name) == getattr(defaults, f.name), (name, f.name)


def test_a_paper_experiment_without_a_row_names_the_missing_choice():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="You must specify 'row'"):
        compose(["experiment=table1"])


def test_a_row_brings_its_papers_settings():
    c = OmegaConf.to_container(compose(["experiment=table1", "row=table1/hut", "task=rte"]), resolve=True)
    assert (c["trainer"]["batch_size"], c["trainer"]["epochs"], c["trainer"]["lr"]) == (16, 80, 2e-3)
    assert c["method"]["r"] == 8 and c["method"]["targets"] == ["q", "v"] and c["trainer"]["max_length"] == 512
    c = OmegaConf.to_container(compose(["experiment=table4", "row=table4/qkvo", "task=cola"]), resolve=True)
    assert (c["method"]["r"], c["method"]["targets"], c["variant"], c["trainer"]["lr"]) == (2, ["q", "k", "v", "o"],
                                                                                       "qkvo-r2", 1e-3)
    c = OmegaConf.to_container(compose(["experiment=table5", "row=table5/v", "task=cola", "method.r=64"]), resolve=True)
    assert c["method"]["r"] == 64 and c["variant"] == "v-r64"


def test_unknown_choice_or_key_is_a_clear_error():
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with pytest.raises((MissingConfigException, ConfigCompositionException), match="nosuch"):
        compose(["method=nosuch"])
    with pytest.raises(ConfigCompositionException):
        compose(["trainer.epohcs=3"])  # strict: a typo in a key


@pytest.mark.parametrize("launcher", ["slurm", "submitit_local", "joblib"])
def test_launchers_compose(launcher):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["experiment=table1", "row=table1/hut", f"hydra/launcher={launcher}",
                                                "hydra.launcher.partition=gpu" if launcher == "slurm" else "seed=0"],
                            return_hydra_config=True)
    assert "Launcher" in cfg.hydra.launcher._target_
    if launcher == "slurm":
        assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.gpus_per_node == 1
        assert cfg.hydra.launcher.array_parallelism > 0
