"""Run records: atomic writes, attempts kept by force, locks, corrupt files, secrets."""
import json
import os
import subprocess
import sys

import pytest

from hut import records


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    p = tmp_path / "a" / "metrics.json"
    records.write_json_atomic(p, {"x": 1})
    records.write_json_atomic(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert sorted(f.name for f in p.parent.iterdir()) == ["metrics.json"]


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        records.write_atomic(tmp_path / "table.md", "| a |\n")
    finally:
        os.umask(old)
    assert (tmp_path / "table.md").stat().st_mode & 0o777 == 0o644


def test_read_record_reports_truncated_file_by_path(tmp_path):
    p = tmp_path / "metrics.json"
    p.write_text('{"status": "succ')
    with pytest.raises(records.CorruptRecord, match=str(p)):
        records.read_record(p)


def test_archive_keeps_numbered_attempts(tmp_path):
    paths = records.RunPaths(tmp_path, "e", "t", "m", "mod", 0)
    for i in range(3):
        records.write_json_atomic(paths.record, {"attempt": i})
        records.archive_record(paths)
    names = sorted(f.name for f in paths.dir.iterdir())
    assert names == ["metrics.attempt1.json", "metrics.attempt2.json", "metrics.attempt3.json"]
    assert json.loads((paths.dir / "metrics.attempt3.json").read_text()) == {"attempt": 2}


def test_lock_excludes_live_owner_and_takes_over_stale(tmp_path):
    lock = records.RunLock(tmp_path / "run.lock")
    assert lock.acquire()
    other = records.RunLock(tmp_path / "run.lock")
    assert not other.acquire()  # held by this live process
    lock.release()
    # a lock left by a process that is gone is stale and taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / "run.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert other.acquire()
    other.release()
    assert not (tmp_path / "run.lock").exists()


def test_scrub_secrets_drops_credential_keys():
    cfg = {"logger": {"api_key": "x", "mode": "offline"}, "a": [{"WANDB_TOKEN": 1, "b": 2}], "secret_thing": 3,
           "task": {"max_new_tokens": 64, "hf_token": "t"}}
    assert records.scrub_secrets(cfg) == {"logger": {"mode": "offline"}, "a": [{"b": 2}], "task": {"max_new_tokens": 64}}


def test_check_writable_names_the_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a results_dir below a regular file cannot be created, even by root
    with pytest.raises(PermissionError, match="results_dir: cannot write to .*a_file"):
        records.check_writable(blocker / "runs")
