"""Adding a method or a GLUE-like task takes only its own pieces (docs/DESIGN.md, "Adding ..."):

* a method: its module (a Method with its Config) + its configs/method/<name>.yaml + one registration
  line; then prepare_model, the trainer, load_run and the aggregator take it as they take any other;
* a GLUE-like task: its GlueTaskSpec + one registration call + its configs/task/<name>.yaml; then the
  loaders, metrics, the trainer and Table 1's column follow.

The configs live in a temporary folder on Hydra's search path, so nothing in configs/ is touched.
"""
import dataclasses

import pytest

from hut import aggregate
from hut.methods import METHODS, Method, count_parameters, prepare_model
from hut.methods.config import MethodConfig, option
from hut.optim import is_norm
from tests.helpers import FIXTURES, make_cfg


@dataclasses.dataclass(frozen=True)
class LNTuneConfig(MethodConfig):
    biases: bool = option(True)  # train the norms' biases too


class LNTune(Method):
    """LayerNorm tuning: only the normalisation layers' weights (and biases) train."""

    name = "lntune"
    Config = LNTuneConfig
    mergeable = True

    def apply(self, model, family):
        for m in model.modules():
            if is_norm(m):
                for n, p in m.named_parameters(recurse=False):
                    p.requires_grad_(n == "weight" or self.config.biases)
        return model

    def merge(self, model):
        return model


@pytest.fixture
def extra_configs(tmp_path):
    conf = tmp_path / "conf"
    (conf / "method").mkdir(parents=True)
    (conf / "task").mkdir()
    (conf / "method" / "lntune.yaml").write_text('name: lntune\nlabel: "LN-tune"\nbiases: true\n')
    (conf / "task" / "toysent.yaml").write_text("name: toysent\n")
    return f"hydra.searchpath=[file://{conf}]"


@pytest.fixture
def lntune():
    METHODS.add("lntune", LNTune)  # the one registration line
    yield
    METHODS.remove("lntune")


@pytest.fixture
def toysent():
    from hut.data.glue import GLUE_TASKS, get_spec
    from hut.tasks import TASKS, register_glue_task

    spec = dataclasses.replace(get_spec("sst2"), name="toysent", label="Toy-Sent")  # reads glue/SST-2/*.tsv
    register_glue_task(spec)
    yield spec
    TASKS.remove("toysent")
    del GLUE_TASKS["toysent"]


def test_a_new_method_runs_everywhere(tmp_path, extra_configs, lntune):
    from hut.export import load_run
    from hut.runs import run_paths
    from hut.trainer import run

    cfg = make_cfg(extra_configs, "method=lntune", "trainer.max_steps=2", results_dir=tmp_path / "runs")
    from hut.methods import build_method
    from hut.models import load_model
    from omegaconf import OmegaConf

    lm = load_model(OmegaConf.to_container(cfg.model, resolve=True), "classification", 2, with_tokenizer=False)
    model = prepare_model(lm.model, build_method(OmegaConf.to_container(cfg.method)), lm.family, lm.head_prefixes)
    assert count_parameters(model, lm.head_prefixes)["adapter"] == 2 * 2 * 32 * 2 + 2 * 32  # 2 LNs/layer + embeddings'
    rec = run(cfg)
    assert rec["status"] == "success" and rec["method"] == "lntune"
    assert load_run(run_paths(cfg).dir).method.name == "lntune"
    out = tmp_path / "out"
    aggregate.build(aggregate.options([f"results_dir={tmp_path / 'runs'}", f"out_dir={out}", "experiments.table1=debug",
                                       "tables=[1]", "flops=false", "figure=false"]), log=lambda s: None)
    assert "| LN-tune |" in (out / "tables" / "table1.md").read_text()


def test_a_new_glue_like_task_runs_everywhere(tmp_path, extra_configs, toysent):
    from hut.trainer import run

    rec = run(make_cfg(extra_configs, "task=toysent", "method=hut", "trainer.max_steps=2", results_dir=tmp_path / "runs",
                       data_dir=FIXTURES))
    assert rec["status"] == "success" and set(rec["best"]) >= {"accuracy", "score"}
    out = tmp_path / "out"
    aggregate.build(aggregate.options([f"results_dir={tmp_path / 'runs'}", f"out_dir={out}", "experiments.table1=debug",
                                       "tables=[1]", "flops=false", "figure=false"]), log=lambda s: None)
    t1 = (out / "tables" / "table1.md").read_text()
    assert "| Method | #Params | Toy-Sent | Avg. |" in t1
