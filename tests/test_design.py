"""The package's shape: no import cycle, small modules, one home for the shared machinery.

Read from the source (``ast``), so a violation names the file and line.
"""
import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hut"
MAX_LINES = 400
# module -> why it may be longer than MAX_LINES (none today; a new entry must say why)
LONG_MODULES: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _module_level_imports(path: Path, name: str) -> list[tuple[str, int]]:
    """Modules imported when ``name`` is imported: top-level statements (not in functions, not under
    ``if TYPE_CHECKING``), including those inside top-level try/if blocks."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(stmts):
        for node in stmts:
            if isinstance(node, ast.Import):
                found.extend((a.name, node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for a in node.names:  # `from hut.x import y`: y may be a submodule
                    sub = f"{base}.{a.name}"
                    found.append((sub if sub in MODULES else base, node.lineno))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return [(m, line) for m, line in found if m in MODULES and m != name]


def test_no_import_cycle_at_module_level():
    graph = {m: _module_level_imports(p, m) for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(m: str):
        state[m] = 1
        stack.append(m)
        for dep, line in graph[m]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail(f"import cycle: {' -> '.join(cycle)} ({MODULES[m].relative_to(PKG.parent)}:{line})")
            if dep not in state:
                dfs(dep)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            dfs(m)


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The check above on two files that import each other."""
    (tmp_path / "a.py").write_text("from hut.b import x\n")
    (tmp_path / "b.py").write_text("import hut.a\n")
    fake = {"hut.a": tmp_path / "a.py", "hut.b": tmp_path / "b.py"}
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    with pytest.raises(pytest.fail.Exception, match="import cycle: hut.a -> hut.b -> hut.a"):
        test_no_import_cycle_at_module_level()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES or name in LONG_MODULES, (
        f"{MODULES[name].relative_to(PKG.parent)} has {n} lines (> {MAX_LINES}): split it by job, "
        "or add it to LONG_MODULES with the reason")


def _calls(attr: str, keyword: str | None = None) -> list[str]:
    """Where ``<something>.attr(...)`` is called (with ``keyword=`` among its arguments, if given)."""
    out = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attr:
                if keyword is None or any(k.arg == keyword for k in node.keywords):
                    out.append(f"{p.relative_to(PKG.parent)}:{node.lineno}")
    return out


def _defs(name: str) -> list[str]:
    return [f"{p.relative_to(PKG.parent)}:{n.lineno}" for m, p in MODULES.items()
            for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.Assign)) and
            (getattr(n, "name", None) == name or any(getattr(t, "id", None) == name for t in getattr(n, "targets", [])))]


def test_one_atomic_write():
    """Every file the suite writes goes through hut.records.write_atomic (temp file, fsync, rename):
    a temporary file next to its destination (``mkstemp(dir=...)``) is made in one place only.
    (Scratch files in the system's temp folder, such as the PTB tokenizer's input, are not results.)"""
    temp_files = _calls("mkstemp", keyword="dir")
    assert temp_files and all(c.startswith("hut/records.py:") for c in temp_files), temp_files


@pytest.mark.parametrize("name", ["versions", "SCHEMA_VERSION", "write_atomic", "compose", "cli_options"])
def test_shared_helpers_are_defined_once(name):
    assert len(_defs(name)) == 1, _defs(name)


def test_no_hand_written_key_value_parser():
    """Commands compose their arguments with Hydra (hut.config.cli_options / compose; their own keys
    apart from run overrides: hut.config.split_own), not by hand."""
    hits = [c for c in _calls("partition") if "\"=\"" in
            (PKG.parent / c.split(":")[0]).read_text().splitlines()[int(c.split(":")[1]) - 1]]
    assert all(h.startswith("hut/config.py:") for h in hits), hits
    as_dict = [f"{m}:{i}" for m, p in MODULES.items() for i, line in enumerate(p.read_text().splitlines(), 1)
               if "dict(" in line and ".split(\"=\", 1)" in line]
    assert not as_dict, as_dict
