"""Every experiment, row, method, task and model config composes, resolves and passes the run config's
schema (hut.schema); the method files set every key of their typed configs; a missing choice, a
misspelt key or a bad value is one line naming the key, before any folder is made."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hut.config import experiments
from hut.config import compose
from hut.schema import validate
from hut.train import check_config, check_rows, check_sweeper
from hut.trainer import run
from tests.helpers import FIXTURES, make_cfg

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUP = lambda g: sorted(p.stem for p in (CONFIGS / g).glob("*.yaml"))  # noqa: E731
DATA = f"data.dir={FIXTURES}"  # the schema wants data.dir to be a folder


def _with_data(cfg: dict) -> dict:
    return {**cfg, "data": {**cfg["data"], "dir": str(FIXTURES)}}


@pytest.mark.parametrize("experiment", GROUP("experiment"))
def test_every_cell_of_every_experiment_composes_resolves_and_passes_the_schema(experiment):
    meta = experiments.meta(experiment)
    cells = experiments.cells(experiment)
    for cell in cells:
        cfg = cell.config  # composed as `hut.train -m` composes the job, and resolved
        assert cfg["experiment_name"] == meta["experiment_name"]
        assert cfg["task"]["name"] == cell.choices.get("task", cfg["task"]["name"])  # the sweep's choices hold
        assert str(cfg["method"].get("r")) == cell.choices.get("method.r", str(cfg["method"].get("r")))
        validate(_with_data(cfg))
    assert cells
    if experiment != "debug":
        assert meta["table"] in ("table1", "table3", "table4", "table5", "figure4", "parts")


# a task of each kind needs a model that can do it (hut.build.check_kind): a decoder for E2E
FITTING = {"task": {"e2e": ["model=tiny_gpt2"]}, "model": {"gpt2_medium": ["task=e2e"], "smollm2": ["task=e2e"],
                                                          "tiny_gpt2": ["task=e2e"]}}


@pytest.mark.parametrize("group", ["method", "task", "model", "logger"])
def test_every_group_option_composes_and_passes_the_schema(group):
    options = GROUP(group)
    assert options
    for option in options:
        fit = FITTING.get(group, {}).get(option, [])
        cfg = OmegaConf.to_container(compose([f"{group}={option}", DATA, *fit]), resolve=True)
        assert cfg[group]["name"] == option  # every group's files name themselves
        validate(cfg)


def test_every_row_composes_outside_its_experiment_too():
    rows = sorted(p.relative_to(CONFIGS / "row").with_suffix("").as_posix() for p in (CONFIGS / "row").rglob("*.yaml"))
    assert len(rows) >= 40
    for row in rows:
        task = ["task=e2e", "model=tiny_gpt2"] if row.startswith(("table3", "demo_e2e")) else ["task=mrpc"]
        cfg = OmegaConf.to_container(compose([f"row={row}", DATA, *task]), resolve=True)
        written = OmegaConf.to_container(OmegaConf.load(CONFIGS / "row" / f"{row}.yaml"))
        assert cfg["method"]["name"] == _method_choice(written), row  # the row's own method
        validate(cfg)


def _method_choice(row_cfg: dict) -> str:
    """The method a row file chooses (``override /method: NAME`` among its defaults)."""
    (name,) = [v for d in row_cfg["defaults"] if isinstance(d, dict) for k, v in d.items() if k.endswith("/method")]
    return name


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


# The bad inputs, a misspelt key and a family name users type: (overrides, the line's start)
BAD = {
    ("trainer.lr=abc",): "trainer.lr must be a number (got 'abc')",
    ("trainer.lrr=1",): "trainer.lrr: no such key; the keys of trainer are: adam_beta2, ",
    ("+trainer.lrr=1",): "trainer.lrr: no such key; the keys of trainer are: adam_beta2, ",
    ("trainer.epohcs=3",): "trainer.epohcs: no such key",
    ("model=minilm", "task=e2e", "data.train_split=dev"):
        "model=minilm is a bert encoder and cannot do task=e2e (generation): choose a model of family gpt2 or llama",
    ("model=tiny_gpt2", "task=squad"): "model=tiny_gpt2 is a gpt2 decoder and cannot do task=squad (qa)",
    ("data.max_train_samples=0",): "data.max_train_samples must be a positive integer for task mrpc (got 0)",
    ("data.train_split=test",): "data.train_split must be one of train, dev for task mrpc (got 'test')",
    ("model=roberta",): "unknown model 'roberta' (model=roberta); known: gpt2_medium, minilm, roberta_base, roberta_large",
    ("method.rr=2",): "method.rr: no such key; the keys of method are: ",
    ("+method.rr=2",): "method.rr: no such key for method 'hut'; the keys of method are: bias_mode, ",
    ("logger.mode=loud",): "logger.mode must be one of offline, online, disabled (got 'loud')",
    ("+extra=1",): "extra: no such key; the keys of a run config are: ",
    ("~trainer.weight_decay",): "trainer.weight_decay must be set: the config has no such key (expected a number >= 0)",
    ("~data.subset_seed",): "data.subset_seed must be set for task mrpc: the config has no such key",
    ("+model.foo=1",): "model.foo: no such key for model 'tiny_roberta'; the keys of model are: arch, ",
    ("+task.foo=1",): "task.foo: no such key for task mrpc; the keys of task are: name",
    ("model.source=hub",): "model.hf_id must be set for model.source=hub (model 'tiny_roberta')",
}


@pytest.mark.parametrize("overrides", sorted(BAD), ids="|".join)
def test_bad_inputs_are_one_line_naming_the_key_and_leave_no_folder(overrides, tmp_path):
    """What ``python -m hut.train`` says before Hydra starts (check_config), and what the trainer says
    to a run composed in code (hut.demo, the bench): one line naming the key; nothing written."""
    argv = ["experiment=debug", DATA, f"results_dir={tmp_path}", *overrides]
    said = check_rows(argv) or check_config(argv)
    assert said is not None and said.startswith(BAD[overrides]) and "\n" not in said, said
    try:
        cfg = make_cfg(*overrides, results_dir=tmp_path)
    except Exception:  # noqa: BLE001 - Hydra refuses it at composition (an unknown key or option): said above
        cfg = None
    if cfg is not None:
        with pytest.raises(ValueError, match="^" + BAD[overrides].split(" (")[0].replace("+", r"\+")):
            run(cfg)
    assert not any(tmp_path.iterdir())  # no record folder, nothing at all


def test_a_sweep_is_checked_at_its_first_job_before_hydra_starts(tmp_path):
    argv = ["-m", "experiment=table1", "task=rte,mrpc", "trainer.lr=abc", DATA, f"results_dir={tmp_path}"]
    assert check_config(argv) == "trainer.lr must be a number (got 'abc')"
    assert check_config(["-m", "experiment=table1", "trainer.lr=1e-4,3e-4", DATA]) is None  # rows from its sweep
    assert not any(tmp_path.iterdir())


def test_a_search_space_a_sweeper_reads_is_left_to_it_and_the_rest_is_checked():
    """interval(...) (Optuna's search spaces) and glob(...) cannot be enumerated: the pre-check leaves that
    key to the sweeper and checks the others."""
    for space in ("interval(1e-4,1e-2)", "tag(log, interval(1e-4, 1e-2))"):
        argv = ["-m", "experiment=debug", f"trainer.lr={space}", DATA]
        assert check_rows(argv) is None and check_config(argv) is None
        assert check_config([*argv, "trainer.epochs=abc"]) == "trainer.epochs must be a positive integer (got 'abc')"
    said = check_sweeper(["-m", "experiment=debug", "trainer.lr=interval(1e-4,1e-2)"])  # the basic sweeper
    assert said.startswith("trainer.lr=interval(1e-4,1e-2): Hydra's basic sweeper cannot enumerate") and "\n" not in said
    assert check_sweeper(["-m", "experiment=debug", "trainer.lr=interval(1e-4,1e-2)", "hydra/sweeper=optuna"]) is None
    assert check_sweeper(["-m", "experiment=debug", "trainer.lr=1e-4,1e-3"]) is None
    assert check_rows(["-m", "experiment=table1", "row=glob(table1/h*)", DATA]) is None  # Hydra's to match
    glob = ["-m", "experiment=debug", "task=glob(mr*)", DATA]  # the first job: task=mrpc, as Hydra's sweeper
    assert check_config(glob) is None and check_config([*glob, "trainer.lr=abc"]) == "trainer.lr must be a number (got 'abc')"
    assert check_rows(["-m", "experiment=table1", "row=table1/hut,table1/hutt"]).startswith("unknown row 'table1/hutt'")
