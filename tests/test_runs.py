"""The run store and the files it writes: atomic writes, attempts kept by force, the lock, corrupt
files, secrets, and one fingerprint for every record of a run (running, finished, failed, crashed)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hut import runs
from hut.files.atomic import check_writable, write_atomic, write_json_atomic
from hut.files.lock import RunLock
from hut.runs import store
from hut.tasks import GlueTask
from hut.trainer import run
from tests.helpers import ROOT, make_cfg


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    p = tmp_path / "a" / "metrics.json"
    write_json_atomic(p, {"x": 1})
    write_json_atomic(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert sorted(f.name for f in p.parent.iterdir()) == ["metrics.json"]


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "table.md", "| a |\n")
    finally:
        os.umask(old)
    assert (tmp_path / "table.md").stat().st_mode & 0o777 == 0o644


def test_read_record_reports_truncated_file_by_path(tmp_path):
    p = tmp_path / "metrics.json"
    p.write_text('{"status": "succ')
    with pytest.raises(runs.CorruptRecord, match=str(p)):
        runs.read_record(p)


def test_archive_keeps_numbered_attempts(tmp_path):
    paths = runs.RunPaths(tmp_path, "e", "t", "m", "mod", 0)
    for i in range(3):
        write_json_atomic(paths.record, {"attempt": i})
        store.archive_record(paths)
    names = sorted(f.name for f in paths.dir.iterdir())
    assert names == ["metrics.attempt1.json", "metrics.attempt2.json", "metrics.attempt3.json"]
    assert json.loads((paths.dir / "metrics.attempt3.json").read_text()) == {"attempt": 2}


def test_lock_excludes_a_live_holder_and_is_free_once_it_is_killed(tmp_path):
    path = tmp_path / "run.lock"
    lock = RunLock(path)
    assert lock.acquire()
    assert not RunLock(path).acquire()  # held (by this process, through another handle)
    lock.release()
    holder = subprocess.Popen([sys.executable, "-c", f"from hut.files.lock import RunLock; import time\n"
                               f"lock = RunLock({str(path)!r}); assert lock.acquire(); print('held', flush=True); time.sleep(60)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        other = RunLock(path)
        assert not other.acquire()  # another live process holds it
        holder.send_signal(signal.SIGKILL)  # killed: the OS drops its lock, nothing is left to clean up
        holder.wait(timeout=30)
        deadline = time.time() + 10
        while not other.acquire() and time.time() < deadline:
            time.sleep(0.1)
        assert other.held
        other.release()
    finally:
        holder.kill()
        holder.wait()


def test_scrub_secrets_drops_credential_keys():
    cfg = {"logger": {"api_key": "x", "mode": "offline"}, "a": [{"WANDB_TOKEN": 1, "b": 2}], "secret_thing": 3,
           "task": {"max_new_tokens": 64, "hf_token": "t"}}
    assert runs.scrub_secrets(cfg) == {"logger": {"mode": "offline"}, "a": [{"b": 2}], "task": {"max_new_tokens": 64}}


def test_check_writable_names_the_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a results_dir below a regular file cannot be created, even by root
    with pytest.raises(PermissionError, match="results_dir: cannot write to .*a_file"):
        check_writable(blocker / "runs")


def _cli(*args, env=None):
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "hut.train", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=300)


def test_crashed_and_failed_runs_carry_the_finished_runs_fingerprint(tmp_path, monkeypatch):
    """One fingerprint per config, whatever the record says: a multirun job that crashed (its data folder
    has no files), a run that failed in training (a non-finite loss) and a finished run of the same
    config (the data folder is where files lie, not part of the config's identity)."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = _cli("-m", "experiment=debug", "trainer.progress=false", f"data.dir={empty}",
               f"results_dir={tmp_path / 'crashed'}", "seed=0")
    assert "FileNotFoundError" in out.stderr and out.returncode == 0, out.stderr[-2000:]  # the sweep went on
    (crashed,) = (tmp_path / "crashed").rglob("metrics.json")
    crashed = runs.read_record(crashed)
    assert crashed["status"] == "failed" and "train.tsv" in crashed["error"]["reason"]

    with monkeypatch.context() as m:
        m.setattr(GlueTask, "loss", lambda self, model, batch: model(**batch).loss * float("nan"))
        failed = run(make_cfg("seed=0", results_dir=tmp_path / "failed"))
    assert failed["status"] == "failed" and "non-finite loss" in failed["error"]["reason"]

    finished = run(make_cfg("seed=0", results_dir=tmp_path / "finished"))
    assert finished["status"] == "success"
    assert crashed["fingerprint"] == failed["fingerprint"] == finished["fingerprint"]
    on_disk = runs.read_record(store.identify(make_cfg("seed=0", results_dir=tmp_path / "failed")).paths.record)
    assert on_disk["fingerprint"] == finished["fingerprint"] and "pid" not in on_disk


def test_a_failure_never_rewrites_another_configs_running_record(tmp_path):
    """A killed run of another config left a running record at this path: this run's failure is
    recorded under its own fingerprint and config, not that record's."""
    this = store.identify(make_cfg(results_dir=tmp_path))
    other = store.identify(make_cfg("trainer.lr=0.5", results_dir=tmp_path))
    left = store.start(other)
    write_json_atomic(this.paths.record, left)
    rec = store.record_failure(this, ValueError("boom"))
    assert rec["fingerprint"] == this.fingerprint != other.fingerprint
    assert rec["config"]["trainer"]["lr"] == this.config["trainer"]["lr"]
    assert rec["error"] == {"reason": "ValueError: boom", "step": None}
