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


# --------------------------------------------------------------------------------------------------
# hut/results: layered, function-level imports included
# --------------------------------------------------------------------------------------------------
RESULTS_LAYERS = (  # hut/results/__init__.py lists them; a module imports only from its layer or earlier ones
    ("hut.results.render", "hut.results.files"),
    ("hut.results.runs", "hut.results.labels", "hut.results.paper", "hut.results.layout"),
    ("hut.results.judge",),
    ("hut.results.tables",),
    ("hut.results.figures",),
    ("hut.results.report",),
    ("hut.results.page",),
    ("hut.results.aggregate",),
)


def _all_imports(path: Path, name: str) -> list[tuple[str, int]]:
    """Every hut module ``name`` imports, at module level or inside a function (``if TYPE_CHECKING``
    blocks aside)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([node.module] if node.module else []))
            found += [((f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base), node.lineno) for a in node.names]
    return [(m, line) for m, line in found if m in MODULES and m != name]


def _layer(module: str) -> int | None:
    for i, prefixes in enumerate(RESULTS_LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_results_imports_follow_its_layers_and_never_go_back_up():
    graph = {m: _all_imports(p, m) for m, p in MODULES.items()}
    inside = [m for m in MODULES if m.startswith("hut.results.")]
    assert all(_layer(m) is not None for m in inside), [m for m in inside if _layer(m) is None]
    bad = [f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {dep}" for m in inside for dep, line in graph[m]
           if dep.startswith("hut.results.") and _layer(dep) > _layer(m)]
    assert not bad, "an import against hut/results' layers:\n" + "\n".join(bad)

    def reaches_results(m: str, seen: set) -> bool:  # does m (outside hut.results) import it, at any depth?
        if m in seen:
            return False
        seen.add(m)
        return any(d.startswith("hut.results") or (not d.startswith("hut.results") and reaches_results(d, seen))
                   for d, _ in graph[m])

    up = [f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {dep}, which imports hut.results"
          for m in inside for dep, line in graph[m] if not dep.startswith("hut.results") and reaches_results(dep, set())]
    assert not up, "hut/results imports back up:\n" + "\n".join(up)


def test_no_import_cycle_inside_results_even_in_functions():
    inside = {m for m in MODULES if m.startswith("hut.results")}
    graph = {m: [d for d, _ in _all_imports(MODULES[m], m) if d in inside] for m in inside}
    state: dict[str, int] = {}

    def dfs(m: str, stack: list[str]):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [m, d]))
            if d not in state:
                dfs(d, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m, [])


def test_the_results_check_sees_an_import_up_the_layers(tmp_path, monkeypatch):
    """A function-level import from the renderer (layer 1) of the page (layer 7), and one from
    hut.results of a module that imports hut.results back."""
    (tmp_path / "render.py").write_text("def f():\n    from hut.results.page import x\n")
    (tmp_path / "page.py").write_text("x = 1\n")
    fake = {"hut.results.render": tmp_path / "render.py", "hut.results.page": tmp_path / "page.py"}
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    with pytest.raises(AssertionError, match="render.py:2 imports hut.results.page"):
        test_results_imports_follow_its_layers_and_never_go_back_up()
    (tmp_path / "render.py").write_text("def f():\n    import hut.cli\n")
    (tmp_path / "cli.py").write_text("from hut.results.page import x\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {**fake, "hut.cli": tmp_path / "cli.py"})
    with pytest.raises(AssertionError, match="imports hut.cli, which imports hut.results"):
        test_results_imports_follow_its_layers_and_never_go_back_up()
