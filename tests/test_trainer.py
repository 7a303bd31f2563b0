"""The shared trainer end to end on tiny models and fixture data (seconds each)."""
import json
import math

import pytest

from hut import runs
from hut.runs import run_paths
from hut.trainer import run
from tests.helpers import make_cfg

GLUE = ["sst2", "mrpc", "cola", "qnli", "rte", "stsb"]


@pytest.mark.parametrize("task", GLUE)
def test_two_step_smoke_per_glue_task(tmp_path, task):
    cfg = make_cfg(f"task={task}", "method=hut", "trainer.max_steps=2", "trainer.batch_size=4",
                   results_dir=tmp_path)
    rec = run(cfg)
    assert rec["status"] == "success"
    on_disk = json.loads(run_paths(cfg).record.read_text())
    for key in ("schema_version", "status", "task", "method", "model", "seed", "best", "last", "history",
                "params", "wall_time_s", "git_sha", "versions", "config"):
        assert key in on_disk, key
    assert on_disk["steps"]["total"] == 2 and on_disk["history"][-1]["step"] == 2
    assert "score" in on_disk["best"] and math.isfinite(on_disk["best"]["score"])
    assert on_disk["params"]["adapter"] > 0 and on_disk["params"]["trainable"] > on_disk["params"]["adapter"]
    assert not run_paths(cfg).checkpoint.exists()  # removed once the run is finished


def test_e2e_two_steps_and_beam_decode(tmp_path):
    cfg = make_cfg("model=tiny_gpt2", "task=e2e", "method=hut", "data.train_split=train", "data.eval_split=test",
                   "trainer.max_steps=2", "trainer.batch_size=2", "task.num_beams=2", "task.max_new_tokens=8",
                   results_dir=tmp_path)
    rec = run(cfg)
    assert rec["status"] == "success", rec.get("error")
    assert set(rec["best"]) >= {"BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"}
    d = run_paths(cfg).dir
    preds = (d / "predictions.txt").read_text().splitlines()
    blocks = (d / "references.txt").read_text().strip().split("\n\n")
    assert len(preds) == len(blocks) > 0


def test_e2e_loss_mask_covers_reference_tokens_only(tmp_path):
    from hut.models import load_model
    from hut.tasks import build_task
    from omegaconf import OmegaConf

    cfg = make_cfg("model=tiny_gpt2", "task=e2e", "method=hut", "data.train_split=train", results_dir=tmp_path)
    c = OmegaConf.to_container(cfg, resolve=True)
    tok = load_model(c["model"], "generation").tokenizer
    task = build_task(c, tok)
    ex = task.train_dataset()[0]
    n_prompt = len(tok(task._prompt("x"), add_special_tokens=False)["input_ids"])
    labels, ids = ex["labels"], ex["input_ids"]
    masked = [i for i, y in enumerate(labels) if y == -100]
    assert masked == list(range(len(masked))) and len(masked) >= n_prompt  # the prompt, and only it
    assert labels[len(masked):] == ids[len(masked):] and labels[-1] == tok.eos_token_id
    decoded = tok.decode([t for t in labels if t != -100], skip_special_tokens=True)
    assert "|" not in decoded  # no MR tokens in the target


def test_rerun_skips_and_force_keeps_old_record(tmp_path, capsys):
    cfg = make_cfg("method=bitfit", "trainer.max_steps=1", results_dir=tmp_path)
    first = run(cfg)
    assert run(cfg) == first and "[skip]" in capsys.readouterr().out
    forced = make_cfg("method=bitfit", "trainer.max_steps=1", "force=true", results_dir=tmp_path)
    run(forced)
    kept = run_paths(cfg).dir / "metrics.attempt1.json"
    assert json.loads(kept.read_text())["best"] == first["best"]
    assert json.loads(run_paths(cfg).record.read_text())["status"] == "success"


def test_same_seed_gives_bit_identical_metrics(tmp_path):
    a = run(make_cfg("method=hut", "trainer.max_steps=3", results_dir=tmp_path / "a"))
    b = run(make_cfg("method=hut", "trainer.max_steps=3", results_dir=tmp_path / "b"))
    assert a["best"] == b["best"] and a["history"] == b["history"]


def test_nan_loss_is_recorded_as_failed(tmp_path):
    cfg = make_cfg("method=ft", "trainer.lr=1e30", "trainer.max_steps=4", "trainer.batch_size=4",
                   results_dir=tmp_path)
    rec = run(cfg)
    assert rec["status"] == "failed"
    assert "non-finite loss" in rec["error"]["reason"] and rec["error"]["step"] >= 1
    assert runs.read_record(run_paths(cfg).record)["status"] == "failed"


def test_record_has_no_secrets_or_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "sk-test-should-not-leak")
    cfg = make_cfg("method=bitfit", "trainer.max_steps=1", results_dir=tmp_path)
    run(cfg)
    text = run_paths(cfg).record.read_text()
    assert "sk-test-should-not-leak" not in text and "WANDB_API_KEY" not in text
