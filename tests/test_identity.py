"""Run identity: a record is reused only for the config that made it (hut.runs.identity, hut.trainer)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from hut import runs
from hut.runs import identity
from hut.runs import run_paths
from hut.runs.checkpoint import BadCheckpoint
from hut.runs.store import RunConflict
from hut.trainer import run
from tests.helpers import FIXTURES, ROOT, make_cfg

BASE = ["experiment=debug", "task=sst2", "method=hut", "model=tiny_roberta", "seed=0", "data.source=local",
        f"data.dir={FIXTURES}", "data.max_train_samples=8", "data.max_eval_samples=8", "trainer.epochs=1",
        "logger=none", "trainer.progress=false"]


def _cli(results_dir, *extra, multirun=False):
    argv = [sys.executable, "-m", "hut.train", *(["-m"] if multirun else []), *BASE, f"results_dir={results_dir}",
            *extra]
    if multirun:
        argv.append(f"hydra.sweep.dir={results_dir}/../multirun")
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _records(root):
    return {p.relative_to(root).as_posix(): runs.read_record(p) for p in sorted(root.rglob("metrics.json"))}


def test_an_override_that_changes_the_result_gets_its_own_record(tmp_path):
    """The issue's two commands: the second (trainer.lr=0.5) runs in its own folder, never a silent skip."""
    R = tmp_path / "runs"
    first = _cli(R)
    assert first.returncode == 0, first.stderr[-2000:]
    second = _cli(R, "trainer.lr=0.5")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "[skip]" not in second.stdout and "[done]" in second.stdout
    recs = _records(R)
    # data.max_train/eval_samples=8 differ from experiment=debug's 32: both runs are variants of it
    data = "data.max_eval_samples=8,data.max_train_samples=8"
    first_key = f"debug/sst2/hut/tiny_roberta/{data}/seed=0/metrics.json"
    second_key = f"debug/sst2/hut/tiny_roberta/{data},trainer.lr=0.5/seed=0/metrics.json"
    assert set(recs) == {first_key, second_key}
    assert recs[second_key]["config"]["trainer"]["lr"] == 0.5 and recs[first_key]["config"]["trainer"]["lr"] == 1e-3
    assert recs[second_key]["overrides"] == {"data.max_eval_samples": 8, "data.max_train_samples": 8,
                                             "trainer.lr": 0.5}
    again = _cli(R, "trainer.lr=0.5")  # the same config again: skipped
    assert again.returncode == 0 and "[skip]" in again.stdout
    same = _cli(R, "trainer.lr=1e-3", "trainer.progress=true")  # restates a default, changes no result
    assert f"[skip] debug/sst2/hut/tiny_roberta/{data}/seed=0:" in same.stdout


def test_a_multirun_over_mixed_precision_runs_each_precision_in_one_process(tmp_path):
    """Hydra's basic launcher runs the jobs in one process; accelerate's process-wide state must not
    make the second job fail (or silently keep the first job's precision)."""
    R = tmp_path / "runs"
    out = _cli(R, "trainer.mixed_precision=no,bf16", multirun=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    recs = _records(R)
    assert sorted(v["config"]["trainer"]["mixed_precision"] for v in recs.values()) == ["bf16", "no"]
    assert all(v["status"] == "success" for v in recs.values())


def test_a_two_value_lr_multirun_writes_two_records_with_their_lr(tmp_path):
    R = tmp_path / "runs"
    out = _cli(R, "trainer.lr=1e-4,3e-4", multirun=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    recs = _records(R)
    assert {v["config"]["trainer"]["lr"] for v in recs.values()} == {1e-4, 3e-4}
    assert sorted(k.split("/")[4].rsplit(",", 1)[1] for k in recs) == ["trainer.lr=0.0001", "trainer.lr=0.0003"]
    assert len({v["fingerprint"] for v in recs.values()}) == 2


def test_a_finished_record_of_another_config_is_never_reused(tmp_path):
    base = ["method=bitfit", "trainer.max_steps=1"]
    first = run(make_cfg(*base, results_dir=tmp_path))
    with pytest.raises(RunConflict, match=r"trainer\.lr: 0\.001 -> 0\.5.*force=true"):
        run(make_cfg(*base, "trainer.lr=0.5", results_dir=tmp_path))  # composed in code: the same path
    assert runs.read_record(run_paths(make_cfg(*base, results_dir=tmp_path)).record) == first
    forced = run(make_cfg(*base, "trainer.lr=0.5", "force=true", results_dir=tmp_path))
    assert forced["config"]["trainer"]["lr"] == 0.5
    kept = json.loads((run_paths(make_cfg(*base, results_dir=tmp_path)).dir / "metrics.attempt1.json").read_text())
    assert kept == first


def test_fingerprint_ignores_bookkeeping_and_sees_every_result_key(tmp_path):
    def fp(*ov):
        from omegaconf import OmegaConf

        return identity.fingerprint(OmegaConf.to_container(make_cfg(*ov, results_dir=tmp_path), resolve=True))

    base = fp()
    for ov in ("logger=wandb", "trainer.progress=false", "trainer.log_every=3", "force=true", "seed=4",
               "trainer.checkpoint_every_steps=2", f"results_dir={tmp_path}/x", "data.dir=/elsewhere"):
        assert fp(ov) == base, ov
    for ov in ("trainer.lr=0.5", "trainer.epochs=2", "trainer.batch_size=2", "method.r=4", "method.targets=[q]",
               "trainer.max_length=32", "data.max_train_samples=4", "data.subset_seed=1",
               "trainer.mixed_precision=bf16", "task=cola"):
        assert fp(ov) != base, ov


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path, capsys):
    run_args = ["method=hut", "trainer.max_steps=2", "keep_checkpoint=true"]
    run(make_cfg(*run_args, "trainer.lr=0.5", results_dir=tmp_path / "a"))
    clean = run(make_cfg(*run_args, results_dir=tmp_path / "b"))
    a, b = run_paths(make_cfg(*run_args, results_dir=tmp_path / "a")), run_paths(make_cfg(*run_args, results_dir=tmp_path / "b"))
    b.record.unlink()  # leave only b's path, with a's checkpoint of another lr in it
    os.replace(a.checkpoint, b.checkpoint)
    again = run(make_cfg(*run_args, results_dir=tmp_path / "b"))
    assert "[restart]" in capsys.readouterr().out
    assert again["history"] == clean["history"]


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_holding_an_arbitrary_object_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg("method=hut", "trainer.max_steps=1", results_dir=tmp_path / "runs")
    paths = run_paths(cfg)
    paths.dir.mkdir(parents=True)
    torch.save({"format": 2, "trainable": _Payload()}, paths.checkpoint)
    with pytest.raises(BadCheckpoint, match=r"checkpoint\.pt: refused: it is not a checkpoint of plain tensors"):
        run(cfg)
    assert not (tmp_path / "pwned").exists()
