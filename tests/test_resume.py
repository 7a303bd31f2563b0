"""Runs that survive: SIGKILL mid-run, rerun, and the result equals an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

from hut.trainer import run, run_paths
from tests.helpers import FIXTURES, ROOT, make_cfg

RUN = ["method=hut", "trainer.max_steps=null", "trainer.epochs=3", "trainer.batch_size=2",
             "trainer.checkpoint_every_steps=1", "task=mrpc"]
CLI = ["experiment=debug", "trainer.progress=false", f"data.dir={FIXTURES}", *RUN]


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    env = dict(os.environ, HUT_TEST_STEP_DELAY="0.3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "hut.train", *CLI, f"results_dir={killed_dir}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cfg = make_cfg(*RUN, results_dir=killed_dir)
    paths = run_paths(cfg)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        # kill in the second epoch, after at least one epoch-end record and a mid-epoch checkpoint
        if paths.record.exists():
            try:
                if len(json.loads(paths.record.read_text())["history"]) >= 1 and paths.checkpoint.exists():
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.05)
    time.sleep(0.4)
    assert proc.poll() is None, "the run finished before it could be killed:\n" + proc.stdout.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = json.loads(paths.record.read_text())
    assert interrupted["status"] == "running" and paths.checkpoint.exists()

    resumed = run(cfg)  # the stale lock of the dead process is taken over
    clean = run(make_cfg(*RUN, results_dir=clean_dir))
    assert resumed["status"] == clean["status"] == "success"
    assert resumed["history"] == clean["history"]  # bit-identical metrics, every epoch
    assert resumed["best"] == clean["best"]
