"""Save/load only the trained parameters; export a merged model that stock transformers loads."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from hut.export import export_merged, load_trainable, read_metadata, save_trainable
from hut.methods import build_method, prepare_model
from hut.methods.hut import HutLinear


def _ids(seed=0):
    return torch.randint(5, 1000, (2, 12), generator=torch.Generator().manual_seed(seed))


def _trained(tiny_model, name, cfg, seed=0):
    lm = tiny_model(name, seed=seed)
    method = build_method(cfg)
    model = prepare_model(lm.model, method, lm.family, lm.head_prefixes)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # stand-in for training: move every trainable parameter
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return lm, method, model


CASES = [("tiny_roberta", {"name": "hut", "r": 4, "targets": ["q", "v", "ffn_in"]}),
         ("tiny_gpt2", {"name": "hut", "r": 4, "targets": ["q", "v", "o"]}),
         ("tiny_roberta", {"name": "hut_compact", "r": 4, "bias_mode": "keep"}),
         ("tiny_roberta", {"name": "lora", "r": 4, "dropout": 0.0}),
         ("tiny_gpt2", {"name": "lora", "r": 4, "dropout": 0.0, "targets": ["q", "v", "ffn_out"]})]


@pytest.mark.parametrize("name,cfg", CASES)
def test_trainable_roundtrip(tmp_path, tiny_model, name, cfg):
    lm, _, model = _trained(tiny_model, name, cfg)
    path = save_trainable(model, tmp_path / "run", metadata={"method": cfg})
    assert read_metadata(path)["method"]
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert path.stat().st_size < 4 * n_trainable + 20_000  # only the trainable parameters
    fresh_lm = tiny_model(name)  # same frozen weights (same seed), fresh adapters
    fresh = prepare_model(fresh_lm.model, build_method(cfg), fresh_lm.family, fresh_lm.head_prefixes)
    ids = _ids()
    assert not torch.allclose(fresh(ids).logits, model(ids).logits)
    assert load_trainable(fresh, path) == {"missing": [], "unexpected": []}
    assert torch.equal(fresh(ids).logits, model(ids).logits)


def test_load_trainable_refuses_other_method(tmp_path, tiny_model):
    _, _, model = _trained(tiny_model, "tiny_roberta", {"name": "hut", "r": 4})
    path = save_trainable(model, tmp_path / "a.safetensors")
    lm = tiny_model("tiny_roberta")
    other = prepare_model(lm.model, build_method({"name": "hut", "r": 2}), lm.family, lm.head_prefixes)
    with pytest.raises(ValueError, match="shape"):
        load_trainable(other, path)
    lm = tiny_model("tiny_roberta")
    other = prepare_model(lm.model, build_method({"name": "lora"}), lm.family, lm.head_prefixes)
    with pytest.raises(ValueError, match="do not match"):
        load_trainable(other, path)


@pytest.mark.parametrize("name,cfg", CASES)
def test_export_merged_loads_in_stock_transformers(tmp_path, tiny_model, name, cfg):
    lm, method, model = _trained(tiny_model, name, cfg)
    ids = _ids(3)
    expected = model(ids).logits.detach()
    out = export_merged(model, method, tmp_path / "merged", None)
    # the training model is left as it was (export works on a copy)
    assert any(isinstance(m, HutLinear) for m in model.modules()) == cfg["name"].startswith("hut")
    auto = AutoModelForCausalLM if name == "tiny_gpt2" else AutoModelForSequenceClassification
    loaded = auto.from_pretrained(str(out)).eval()
    for m in loaded.modules():
        assert type(m).__module__.startswith(("torch.", "transformers."))
    got = loaded(ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, tiny_model(name).model(ids).logits, atol=1e-3)


def test_export_refuses_unmergeable(tmp_path, tiny_model):
    class NoMerge:
        name, mergeable = "nomerge", False

    lm = tiny_model("tiny_roberta")
    with pytest.raises(NotImplementedError):
        export_merged(lm.model, NoMerge(), tmp_path / "x", None)


def test_export_llama_bias_free_projections(tmp_path):
    """Llama projections have no bias; a merged HUT layer has one (β): the export switches the config's
    attention_bias on (zero biases for the other projections) so stock transformers loads it."""
    from hut.models import load_model

    cfg = {"name": "tiny_llama", "source": "config", "head_prefixes": [],
           "arch": {"model_type": "llama", "vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                    "max_position_embeddings": 64}}
    torch.manual_seed(0)
    lm = load_model(cfg, "generation", pretrained=False, with_tokenizer=False)
    method = build_method({"name": "hut", "r": 2, "targets": ["q", "v", "ffn_out"]})
    model = prepare_model(lm.model.eval(), method, lm.family, lm.head_prefixes)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    ids = _ids()
    expected = model(ids).logits.detach()
    out = export_merged(model, method, tmp_path / "llama", None)
    loaded = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    assert loaded.config.attention_bias and loaded.config.mlp_bias
    assert torch.allclose(loaded(ids).logits, expected, atol=1e-5)


# ------------------------------------------------------------------------- a finished run, loaded back
def _run_method(tmp_path, method):
    from hut.runs import run_paths
    from hut.trainer import run
    from tests.helpers import make_cfg

    extra = ["method.n_frequency=64"] if method == "fourierft" else []
    cfg = make_cfg(f"method={method}", "trainer.max_steps=2", "trainer.batch_size=4", *extra, results_dir=tmp_path)
    return cfg, run(cfg), run_paths(cfg).dir


@pytest.mark.parametrize("method", sorted(__import__("hut.methods", fromlist=["METHODS"]).METHODS.names()))
def test_every_method_round_trips_through_a_finished_run(tmp_path, method):
    """The trainer keeps a run's trained parameters; load_run rebuilds the model and it scores the same."""
    from accelerate import Accelerator
    from omegaconf import OmegaConf

    from hut.export import load_run
    from hut.tasks import build_task

    cfg, rec, run_dir = _run_method(tmp_path, method)
    assert rec["status"] == "success" and (run_dir / "trainable.safetensors").is_file()
    loaded = load_run(run_dir)
    task = build_task(OmegaConf.to_container(cfg, resolve=True), loaded.tokenizer)
    metrics = task.evaluate(loaded.model, Accelerator(cpu=True), tmp_path / "eval")
    assert metrics == {k: rec["last"][k] for k in metrics}, (metrics, rec["last"])


def test_load_run_refuses_an_unfinished_or_foreign_run(tmp_path):
    import json

    from hut.export import load_run

    _, _, run_dir = _run_method(tmp_path, "hut")
    rec = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**rec, "fingerprint": "0" * 16}))
    with pytest.raises(ValueError, match="belongs to another config"):
        load_run(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({**rec, "status": "running"}))
    with pytest.raises(ValueError, match="not a finished run"):
        load_run(run_dir)


# ------------------------------------------------------------------ export that round-trips (docs/library.md)
SENTENCE = "The cat sat on the mat."


def _readme_export_block() -> str:
    from tests.helpers import ROOT

    text = (ROOT / "docs" / "library.md").read_text()
    start = text.index("```python\nfrom hut.export import load_run, export_merged")
    return text[start + len("```python\n"): text.index("```", start + 10)]


def test_the_readme_export_example_run_as_written_gives_load_runs_logits(tmp_path, monkeypatch):
    """An encoder (tiny_roberta): docs/library.md's block, with only the run folder changed, loads the export
    with plain transformers (AutoModelFor..., AutoTokenizer) and gets load_run's logits."""
    _, _, run_dir = _run_method(tmp_path, "hut")
    block = _readme_export_block()
    assert block.count("results/runs/table1/rte/hut/roberta_large/seed=0") == 1
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(block.replace("results/runs/table1/rte/hut/roberta_large/seed=0", str(run_dir)), ns)
    assert (tmp_path / "hut-rte-merged" / "tokenizer_config.json").is_file()
    assert ns["tokenizer"](SENTENCE)["input_ids"] == ns["run"].tokenizer(SENTENCE)["input_ids"]
    torch.testing.assert_close(ns["same"], ns["logits"], atol=1e-5, rtol=0)


def test_a_gpt2_run_exports_for_plain_transformers(tmp_path):
    """GPT-2 (tiny_gpt2, a classifier on MRPC: the E2E causal LM merges the same way, tested above
    without a run) through load_run, export_merged and plain transformers."""
    from transformers import AutoTokenizer

    from hut.export import load_run
    from hut.runs import run_paths
    from hut.trainer import run
    from tests.helpers import make_cfg

    cfg = make_cfg("model=tiny_gpt2", "method=hut", "trainer.max_steps=1", "data.max_train_samples=8",
                   "data.max_eval_samples=8", results_dir=tmp_path)
    assert run(cfg)["status"] == "success"
    loaded = load_run(run_paths(cfg).dir)
    with torch.no_grad():
        expected = loaded.model(**loaded.tokenizer(SENTENCE, return_tensors="pt")).logits
    out = export_merged(loaded.model, loaded.method, tmp_path / "gpt2-merged", loaded.tokenizer)
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    with torch.no_grad():
        got = model(**tok(SENTENCE, return_tensors="pt")).logits
    assert type(model).__name__ == "GPT2ForSequenceClassification"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
