"""Every experiment, method, task and model config composes; Table 6/7 values reach the runs."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUP = lambda g: sorted(p.stem for p in (CONFIGS / g).glob("*.yaml"))  # noqa: E731


@pytest.fixture(scope="module")
def hydra_ctx():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        yield


def _sweep(cfg) -> dict:
    return dict(cfg.hydra.sweeper.params) if "hydra" in cfg and cfg.hydra.sweeper.get("params") else {}


@pytest.mark.parametrize("experiment", GROUP("experiment"))
def test_every_experiment_composes_with_every_sweep_value(hydra_ctx, experiment):
    cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    sweep = _sweep(cfg)
    # Compose one job per value of each swept key (not the full product: that is hundreds).
    for key, values in sweep.items():
        for v in str(values).split(","):
            job = compose("train", overrides=[f"experiment={experiment}", f"{key}={v}"])
            assert job.experiment_name == experiment
            assert job.method.name and job.task.name and job.model.name


@pytest.mark.parametrize("group", ["method", "task", "model", "logger", "ablation"])
def test_every_group_option_composes(hydra_ctx, group):
    for option in GROUP(group):
        cfg = compose("train", overrides=[f"{group}={option}"])
        if group in ("method", "task", "model"):
            assert cfg[group].name == option


def test_method_names_match_registry():
    from hut.methods import METHODS

    assert set(GROUP("method")) == set(METHODS.names())


def test_table6_reaches_hut_runs(hydra_ctx):
    expect = {"sst2": (8, 20, 1e-4), "mrpc": (16, 20, 5e-3), "cola": (4, 40, 1e-3),
              "qnli": (8, 10, 2e-4), "rte": (16, 80, 2e-3), "stsb": (16, 40, 5e-3)}
    for task, (bs, ep, lr) in expect.items():
        c = compose("train", overrides=["experiment=table1", f"task={task}", "method=hut"])
        assert (c.trainer.batch_size, c.trainer.epochs, c.trainer.lr) == (bs, ep, lr)
        assert (c.method.r, list(c.method.targets), c.trainer.max_length, c.trainer.warmup_ratio) == (8, ["q", "v"], 512, 0.06)


def test_table7_reaches_e2e_runs(hydra_ctx):
    c = compose("train", overrides=["experiment=table3", "method=hut"])
    assert (c.model.name, c.task.name, c.data.eval_split) == ("gpt2_medium", "e2e", "test")
    assert (c.trainer.batch_size, c.trainer.epochs, c.trainer.lr, c.trainer.weight_decay, c.trainer.warmup_steps) == (4, 5, 2e-3, 0.01, 500)
    assert (c.method.r, list(c.method.targets), c.task.label_smoothing) == (4, ["q", "v"], 0.1)
    assert (c.task.num_beams, c.task.length_penalty, c.task.no_repeat_ngram_size, c.task.max_new_tokens) == (10, 0.9, 4, 64)
    lora = compose("train", overrides=["experiment=table3", "method=lora"])
    assert (lora.method.r, lora.method.alpha, lora.trainer.lr, lora.trainer.batch_size) == (4, 32, 2e-4, 8)


def test_ablation_cells_set_rank_and_record_variant(hydra_ctx):
    t4 = {"q": 16, "k": 16, "v": 16, "o": 16, "qk": 8, "qv": 8, "qkv": 4, "qkvo": 2}
    for t, r in t4.items():
        c = compose("train", overrides=["experiment=table4", "task=mrpc", f"ablation=t4_{t}"])
        assert c.method.r == r and "".join(c.method.targets) == t and c.variant == f"{t}-r{r}"
    c = compose("train", overrides=["experiment=table5", "task=cola", "ablation=t5_qkvo", "method.r=64"])
    assert c.method.r == 64 and c.variant == "qkvo-r64"


def test_unknown_choice_is_a_clear_error(hydra_ctx):
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with pytest.raises((MissingConfigException, ConfigCompositionException), match="nosuch"):
        compose("train", overrides=["method=nosuch"])
    with pytest.raises(ConfigCompositionException):
        compose("train", overrides=["trainer.epohcs=3"])  # strict: a typo in a key


@pytest.mark.parametrize("launcher", ["slurm", "submitit_local", "joblib"])
def test_launchers_compose(hydra_ctx, launcher):
    cfg = compose("train", overrides=["experiment=table1", f"hydra/launcher={launcher}",
                                      "hydra.launcher.partition=gpu" if launcher == "slurm" else "seed=0"],
                  return_hydra_config=True)
    assert "Launcher" in cfg.hydra.launcher._target_
    if launcher == "slurm":
        assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.gpus_per_node == 1
        assert cfg.hydra.launcher.array_parallelism > 0
