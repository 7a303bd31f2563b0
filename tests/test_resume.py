"""Kill anywhere: a real training process is SIGKILLed at many points (HUT_FAULT, hut/runtime/faults.py), rerun
after each kill, and the final record equals the uninterrupted run's; no partial file is ever read as
a finished record. A write that fails (full disk) leaves the previous file and ends with one line.

The short GLUE and E2E chains run in ``make test``; ``-m slow`` kills once at every step, evaluation
batch and file write of the GLUE run (``test_kill_at_every_point``) and runs the SQuAD chain.
"""
import os
import signal
import subprocess
import sys

import pytest
import torch

from hut import runs
from hut.trainer import run
from tests.helpers import FIXTURES, ROOT, make_cfg

GLUE = ["task=mrpc", "method=hut", "trainer.max_steps=null", "trainer.epochs=2", "trainer.batch_size=2",
        "trainer.eval_batch_size=4", "trainer.checkpoint_every_steps=2"]  # 4 steps and 2 eval batches per epoch
E2E = ["model=tiny_gpt2", "task=e2e", "method=lora", "data.train_split=train", "data.eval_split=test",
       "trainer.max_steps=null", "trainer.epochs=2", "trainer.batch_size=2", "trainer.eval_batch_size=1",
       "task.num_beams=2", "task.max_new_tokens=6", "trainer.checkpoint_every_steps=1"]
SQUAD = ["task=squad", "method=hut", "trainer.max_length=40", "task.doc_stride=12", "data.train_split=dev",
         "data.train_articles=0:3", "data.eval_articles=3:4", "trainer.max_steps=null", "trainer.epochs=2",
         "trainer.batch_size=4", "trainer.eval_batch_size=2", "trainer.checkpoint_every_steps=2"]
RESULT = ("status", "history", "best", "last", "params", "steps", "fingerprint", "eval_subset")


def _cli(results_dir, run_args, fault=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("HUT_FAULT", None)
    if fault:
        env["HUT_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "hut.train", "experiment=debug", "trainer.progress=false",
                           f"data.dir={FIXTURES}", f"results_dir={results_dir}", *run_args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _record_path(results_dir):
    (p,) = list(results_dir.rglob("metrics.json"))
    return p


def _after_kill(results_dir, fault):
    """What a killed process left is never taken for a finished run, and every file is whole."""
    found = list(results_dir.rglob("metrics.json"))
    if found:
        rec = runs.read_record(found[0])  # never truncated: an error here fails the test
        assert rec["status"] == "running", (fault, rec["status"])
        ck = found[0].parent / "checkpoint.pt"
        if ck.exists():
            torch.load(ck, map_location="cpu", weights_only=True)


def _chain(tmp_path, run_args, kills):
    killed = tmp_path / "killed"
    for fault in kills:
        out = _cli(killed, run_args, fault)
        assert out.returncode == -signal.SIGKILL, (fault, out.returncode, out.stderr[-1500:])
        _after_kill(killed, fault)
    final = _cli(killed, run_args)
    assert final.returncode == 0 and "[done]" in final.stdout, final.stdout[-1500:] + final.stderr[-1500:]
    resumed = runs.read_record(_record_path(killed))
    clean = run(make_cfg(*run_args, results_dir=tmp_path / "clean"))
    for key in RESULT:
        assert resumed[key] == clean[key], key
    assert (_record_path(killed).parent / "trainable.safetensors").exists()
    assert not list(killed.rglob(".*.tmp"))  # partial writes of killed processes were swept up
    return resumed


def test_kill_chain_glue(tmp_path):
    """Six kills in a row, each in another place, then a clean finish: equal to a run never killed."""
    kills = ["kill:step:3",                      # mid-epoch, after the step-2 checkpoint
             "kill:write:checkpoint.pt:1",       # while writing a checkpoint
             "kill:eval:2",                      # during the first evaluation
             "kill:write:metrics.json:2",        # while writing the epoch's record
             "kill:write:trainable.safetensors:1",  # while saving the trained parameters
             "kill:write:metrics.json:2"]        # while writing the final (success) record
    rec = _chain(tmp_path, GLUE, kills)
    assert rec["status"] == "success" and len(rec["history"]) == 2


def test_kill_chain_e2e_decoding(tmp_path):
    rec = _chain(tmp_path, E2E, ["kill:eval:2", "kill:write:predictions.txt:1", "kill:step:2"])
    assert set(rec["best"]) >= {"BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"}


@pytest.mark.slow  # three processes (~50 s on 2 shared cores); make test-slow runs it
def test_kill_chain_squad(tmp_path):
    """Extractive QA: killed during an evaluation and while writing the second predictions.json (a kill
    mid-epoch is the trainer's, the GLUE chain covers it)."""
    rec = _chain(tmp_path, SQUAD, ["kill:eval:2", "kill:write:predictions.json:2"])
    assert set(rec["best"]) >= {"exact_match", "f1"} and len(rec["history"]) == 2


@pytest.mark.slow
def test_kill_at_every_point(tmp_path):
    """One kill at each step, evaluation batch and file write of the GLUE run, then a rerun each time."""
    points = ([f"kill:step:{k}" for k in range(1, 9)] + [f"kill:eval:{k}" for k in range(1, 5)]
              + [f"kill:write:checkpoint.pt:{k}" for k in range(1, 7)]
              + [f"kill:write:metrics.json:{k}" for k in range(1, 5)] + ["kill:write:trainable.safetensors:1"])
    for i, fault in enumerate(points):
        _chain(tmp_path / f"p{i}", GLUE, [fault])
    print(f"kill points tried and passed: {len(points)}")


@pytest.mark.parametrize("name,nth", [("metrics.json", 2), ("checkpoint.pt", 2)])
def test_a_full_disk_keeps_the_previous_file_and_ends_with_one_line(tmp_path, name, nth):
    out = _cli(tmp_path, GLUE, f"enospc:write:{name}:{nth}")
    assert out.returncode == 1
    err = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "No space left on device" in err[0] and name in err[0], out.stderr[-1500:]
    assert "Traceback" not in out.stderr
    target = _record_path(tmp_path).parent / name
    if name == "metrics.json":
        assert runs.read_record(target)["status"] == "running"  # the first write, intact
    else:
        ck = torch.load(target, map_location="cpu", weights_only=True)
        assert ck["step"] == 2  # the first checkpoint (step 2), intact
    assert not list(tmp_path.rglob(".*.tmp"))
