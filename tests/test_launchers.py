"""Scale-out: Hydra launchers produce one record per run, and overlapping sweeps run each run once."""
import os
import subprocess
import sys

from hut import runs
from tests.helpers import FIXTURES, ROOT

# Only the experiment's own choices and bookkeeping keys: the records land at the experiment's paths.
SWEEP = ["-m", "experiment=debug", "method=hut,hut_compact", "trainer.progress=false", f"data.dir={FIXTURES}"]


def _records(results_dir):
    return sorted(p.relative_to(results_dir).as_posix() for p in results_dir.rglob("metrics*.json"))


def _launch(results_dir, *extra, env=None):
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "hut.train", *SWEEP, f"results_dir={results_dir}",
                             f"hydra.sweep.dir={results_dir}/../multirun", *extra],
                            cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ok(proc):
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_joblib_multirun_two_methods(tmp_path):
    out = _ok(_launch(tmp_path / "runs", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"))
    recs = _records(tmp_path / "runs")
    assert recs == ["debug/mrpc/hut/tiny_roberta/seed=0/metrics.json",
                    "debug/mrpc/hut_compact/tiny_roberta/seed=0/metrics.json"], out[-2000:]
    for r in recs:
        assert runs.read_record(tmp_path / "runs" / r)["status"] == "success"


def test_submitit_local_one_job(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hut.train", "-m", "experiment=debug", "method=hut",
                           "trainer.progress=false", f"data.dir={FIXTURES}",
                           f"results_dir={tmp_path}/runs", f"hydra.sweep.dir={tmp_path}/multirun",
                           "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = runs.read_record(tmp_path / "runs/debug/mrpc/hut/tiny_roberta/seed=0/metrics.json")
    assert rec["status"] == "success"


def test_two_overlapping_launches_run_each_run_once(tmp_path):
    slow = {"HUT_FAULT": "delay:step:1.0"}
    a = _launch(tmp_path / "runs", env=slow)
    b = _launch(tmp_path / "runs", env=slow)
    out = _ok(a) + _ok(b)
    assert out.count("[done]") == 2, out[-4000:]  # each of the two runs trained exactly once
    assert _records(tmp_path / "runs") == ["debug/mrpc/hut/tiny_roberta/seed=0/metrics.json",
                                           "debug/mrpc/hut_compact/tiny_roberta/seed=0/metrics.json"]
