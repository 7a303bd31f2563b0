"""What a run runs on and what it prints (hut.runtime): the device it asks for or a one-line refusal,
a record of what it used, readable logs, and a failed record when it stops before training."""
import io
import os
import subprocess
import sys

import pytest
import torch

from hut import runs
from hut.config import compose
from hut.runtime import device as devices
from hut.runtime.console import MAX_LINE
from hut.runs import run_paths
from hut.trainer import run
from tests.helpers import ROOT, make_cfg

PAPER_EXPERIMENTS = ["table1", "table1_extended", "table3", "table3_extended", "table4", "table5"]
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve("cpu") == "cpu" and devices.resolve("auto") == "cpu"
    with pytest.raises(devices.DeviceUnavailable, match=r"trainer.device=cuda but CUDA is not usable.*trainer.device=cpu"):
        devices.resolve("cuda")
    with pytest.raises(ValueError, match="trainer.device must be one of auto, cpu, cuda, got 'gpu'"):
        devices.resolve("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve("auto") == "cuda" and devices.resolve("cuda") == "cuda"



def test_cpu_bf16_native_reads_torchs_capabilities(monkeypatch):
    """Native bf16 is AVX512-BF16 or AMX (or Arm's BF16); a CPU torch cannot describe is unknown, not False."""
    for caps, native in [({"avx512_bf16": False, "amx_bf16": True}, True), ({"avx512_bf16": True}, True),
                         ({"avx512_bf16": False, "amx_bf16": False, "avx2": True}, False), ({"avx2": True}, None)]:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert devices.cpu_bf16_native() is native, caps
        assert devices.describe(torch.device("cpu"), "bf16")["bf16_native"] is native
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    assert devices.cpu_bf16_native() is None

@no_cuda
@pytest.mark.slow  # a subprocess (~10-20 s on 2 busy cores); the in-process refusal is tested below
def test_cli_cuda_without_a_gpu_is_one_line_naming_cuda(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HUT_DEBUG"}
    out = subprocess.run([sys.executable, "-m", "hut.train", "experiment=debug", "trainer.device=cuda",
                          f"results_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "CUDA" in out.stderr, out.stderr[-2000:]
    assert not any(tmp_path.iterdir())  # nothing written: not a failed run, a machine without the device


@no_cuda
@pytest.mark.parametrize("experiment", ["debug", *PAPER_EXPERIMENTS])
def test_cuda_without_a_gpu_stops_before_anything_is_written(tmp_path, experiment):
    """debug asked for cuda, or a paper experiment as it is: refused; trainer.device=cpu asks for the CPU."""
    from hut.config import experiments

    ov = experiments.cells(experiment)[0].run_overrides(0) if experiment != "debug" else [
        "experiment=debug", "trainer.device=cuda"]
    cfg = compose([*ov, f"results_dir={tmp_path}"])
    assert cfg.trainer.device == "cuda"
    with pytest.raises(devices.DeviceUnavailable, match="CUDA"):
        run(cfg)
    assert not any(tmp_path.iterdir())
    assert compose([*ov, "trainer.device=cpu"]).trainer.device == "cpu"


@pytest.mark.parametrize("experiment", ["debug", "demo", "demo_e2e"])
def test_small_experiments_run_on_a_cpu(experiment):
    from hut.config import experiments

    ov = experiments.cells(experiment)[0].run_overrides(0) if experiments.cells(experiment) else [f"experiment={experiment}"]
    assert compose(ov).trainer.device in ("cpu", "auto")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _tiny(tmp_path, *extra):
    return make_cfg("trainer.epochs=2", "trainer.max_steps=null", "data.max_train_samples=16",
                    "data.max_eval_samples=8", "trainer.log_every=1", *extra, results_dir=tmp_path)


def test_log_file_has_a_line_per_epoch_and_no_bar_frames(tmp_path, capsys):
    """Not a terminal (pytest captures): no \\r frames, a line per step and per epoch, none over 200."""
    rec = run(_tiny(tmp_path, "trainer.progress=true"))
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    lines = out.splitlines()
    assert max(map(len, lines)) <= MAX_LINE
    epochs = [ln for ln in lines if " epoch " in ln and not ln.startswith("[done]")]
    assert len(epochs) == 2 and all("dev accuracy=" in ln and "score=" in ln and "train_loss" in ln and "ETA" in ln
                                    and "ex/s" in ln and " lr " in ln for ln in epochs), epochs
    assert sum(" step " in ln and "loss" in ln and "it/s" in ln for ln in lines) == rec["steps"]["total"]
    dev = rec["device"]  # the record names what was used
    assert dev["type"] == "cpu" and dev["torch"] == torch.__version__ and dev["mixed_precision"] == "no"


def test_terminal_gets_one_short_bar_and_progress_false_none(tmp_path, monkeypatch, capsys):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    run(_tiny(tmp_path / "on", "trainer.progress=true"))
    shown = term.getvalue()
    assert "\r" in shown and "%|" in shown and "it/s" in shown and "loss=" in shown
    labels = {f.split(":")[0].strip() for f in shown.split("\r") if "%|" in f}
    assert labels == {"mrpc/hut/tiny_roberta s0", "eval"}, labels  # one bar per run, short label; eval's own
    assert sum("it/s" in ln for ln in capsys.readouterr().out.splitlines()) == 0  # step lines only without a bar
    term.seek(0)
    term.truncate()
    run(_tiny(tmp_path / "off", "trainer.progress=false"))
    assert term.getvalue() == ""  # no training bar, no eval bar


def test_a_run_that_fails_before_training_leaves_a_failed_record(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    cfg = make_cfg("trainer.max_steps=1", results_dir=tmp_path / "runs", data_dir=empty)
    with pytest.raises(FileNotFoundError):
        run(cfg)
    rec = runs.read_record(run_paths(cfg).record)
    assert rec["status"] == "failed" and "FileNotFoundError" in rec["error"]["reason"]
    assert "train.tsv" in rec["error"]["reason"] and "pid" not in rec


def test_load_reports_are_quiet_unless_asked_for_and_colour_codes_leave_a_file(monkeypatch):
    """transformers' LOAD REPORT (every from_pretrained) is dropped unless TRANSFORMERS_VERBOSITY=info asks
    for it; in a log file (not a terminal) colour codes are taken out of what transformers logs."""
    import logging

    import transformers.utils.logging as tlog

    from hut.runtime import console

    def record(text):
        return logging.LogRecord("transformers.modeling_utils", logging.WARNING, "f", 1, text, ("d",), None)

    def shown(rec):
        return all(f.filter(rec) for f in handler.filters)

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    tlog.get_verbosity()  # transformers' handler
    handler = logging.getLogger("transformers").handlers[0]
    monkeypatch.setattr(handler, "filters", [])
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    console.quiet_libraries(True)
    assert not shown(record("\x1b[1mBertModel LOAD REPORT\x1b[0m from: %s"))
    other = record("\x1b[1mSome warning\x1b[0m about %s")
    assert shown(other) and other.getMessage() == "Some warning about d"
    monkeypatch.setattr(handler, "filters", [])
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    before = tlog.get_verbosity()
    try:
        console.quiet_libraries(True)
    finally:
        tlog.set_verbosity(before)  # the level it sets would outlive this test
    asked = record("\x1b[1mBertModel LOAD REPORT\x1b[0m from: %s")
    assert shown(asked) and asked.getMessage() == "BertModel LOAD REPORT from: d"


def test_library_messages_are_quiet_unless_asked_for(monkeypatch):
    """transformers' log messages (its loss_type=None line of every GPT-2 loss) only with
    TRANSFORMERS_VERBOSITY; the libraries' FutureWarnings only when Python is asked for warnings."""
    import warnings

    import transformers.utils.logging as tlog

    from hut.runtime import console

    before = tlog.get_verbosity()
    monkeypatch.setattr(sys, "warnoptions", [])
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("default")
            monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
            console.quiet_libraries(True)
            assert tlog.get_verbosity() == tlog.ERROR
            for module in ("transformers.modeling_utils", "peft.tuners.lora", "hut.trainer"):
                warnings.warn_explicit("old API", FutureWarning, "f.py", 1, module=module)
            assert [str(w.message) for w in seen] == ["old API"] and seen[0].filename == "f.py"  # hut's own: shown
            monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "warning")
            console.quiet_libraries(True)
            assert tlog.get_verbosity() == tlog.WARNING
    finally:
        tlog.set_verbosity(before)


def test_hydra_output_folder_is_keyed_by_every_override():
    """Two runs that differ only in an override get their own .hydra/ folder; a long command line is one
    folder name of bounded length (start + digest of the whole)."""
    from omegaconf import OmegaConf

    from hut.runs.identity import short_name

    hydra = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "train.yaml").hydra, resolve=False)
    for d in (hydra["run"]["dir"], hydra["sweep"]["subdir"]):
        assert "${hut_dirname:${hydra:job.override_dirname}}" in d
    a = "experiment=debug,row=table1/hut,trainer.lr=0.1," + "x" * 200
    b = a.replace("trainer.lr=0.1", "trainer.lr=0.2")
    assert short_name(a, 120) != short_name(b, 120) and len(short_name(a, 120)) == 120 and "/" not in short_name(a, 120)
