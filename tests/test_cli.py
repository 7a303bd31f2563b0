"""Every command built on hut.config.cli_options: ``-h``/``--help``/``help`` prints the usage of its
``configs/cli/<name>.yaml`` (header comment, then its keys) and exits 0; bad input is one line."""
import importlib
import re

import pytest
import torch

from hut.config import CLI_DIR, HELP, cli_help

COMMANDS = sorted(p.stem for p in CLI_DIR.glob("*.yaml"))


def _module(name: str) -> str:
    """The command a configs/cli file belongs to, from its usage line (`python -m hut.X ...`)."""
    first = (CLI_DIR / f"{name}.yaml").read_text().splitlines()[0]
    m = re.match(r"# `?python -m (hut[\w.]+)", first)
    assert m, f"configs/cli/{name}.yaml: its first line is not the command's usage: {first!r}"
    mod = m.group(1)  # a package without main of its own runs its __main__ (hut.plan)
    return mod if hasattr(importlib.import_module(mod), "main") else mod + ".__main__"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_answers_help_with_its_usage(name, capsys):
    main = importlib.import_module(_module(name)).main
    for flag in HELP:
        with pytest.raises(SystemExit) as e:
            main([flag])
        assert e.value.code in (0, None)
        out = capsys.readouterr().out
        assert out == cli_help(name) + "\n" and out.startswith(("`python -m hut.", "python -m hut."))
        assert f"keys (configs/cli/{name}.yaml" in out


def test_help_is_the_header_then_every_key(tmp_path, monkeypatch):
    import hut.config as config

    (tmp_path / "x.yaml").write_text("# `python -m hut.x [a=1]`: does x.\n# More about x.\na: 1   # the a\n\nb: [q]\n")
    monkeypatch.setattr(config, "CLI_DIR", tmp_path)
    assert cli_help("x") == ("`python -m hut.x [a=1]`: does x.\nMore about x.\n\n"
                             "keys (configs/cli/x.yaml; give any as key=value):\n  a: 1   # the a\n  b: [q]")


@pytest.mark.parametrize("module,argv,says", [
    ("hut.bench.host_reads", ["methods=[nosuch]"], "hut.bench.host_reads: unknown methods ['nosuch'] (methods=); known: "),
    ("hut.bench.host_reads", ["families=[t5]"], "hut.bench.host_reads: unknown families ['t5']; known: bert, gpt2"),
    ("hut.bench.host_reads", ["device=tpu"], "hut.bench.host_reads: device must be one of auto, cpu, cuda"),
    ("hut.precision", ["methods=[nosuch]"], "hut.precision: unknown methods ['nosuch'] (methods=); known: "),
    ("hut.precision", ["dtype=fp8"], "hut.precision: dtype is bf16 or fp16 (got 'fp8')"),
])
def test_bad_input_to_a_command_is_one_line(module, argv, says):
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(argv)
    assert str(e.value).startswith(says) and "\n" not in str(e.value), str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA runs device=cuda")
@pytest.mark.parametrize("module", ["hut.bench.host_reads", "hut.precision"])
def test_device_cuda_without_cuda_is_one_line(module):
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(["methods=[lora]", "device=cuda"])
    assert "device=cuda but CUDA is not usable here" in str(e.value) and "device=cpu" in str(e.value)
    assert "\n" not in str(e.value)
