"""The package's shape: no import cycle, imports where they can be seen, small modules and functions,
one home for the shared machinery, the dependencies declared and used.

Read from the source (``ast``), so a violation names the file and line.
"""
import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hut"
MAX_LINES = 400
MAX_TRAINER_FUNCTION = 60  # lines of any one function of hut/trainer.py: it reads top to bottom
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


def _imported(node: ast.Import | ast.ImportFrom, name: str, path: Path) -> list[str]:
    """The modules an import statement of module ``name`` imports (``from hut.x import y``: y may be a submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
        base = ".".join(anchor + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _function_level_imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """Modules of ``hut`` imported inside a function of ``name``: (module, line, whether a comment on
    the line or the line above says why)."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for fn in ast.walk(ast.parse(text, str(path))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                said = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                found.extend((m, node.lineno, said) for m in _imported(node, name, path) if m in MODULES and m != name)
    return found


def _module_level_imports(path: Path, name: str) -> list[tuple[str, int]]:
    """Modules imported when ``name`` is imported: top-level statements (not in functions, not under
    ``if TYPE_CHECKING``), including those inside top-level try/if blocks."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int]] = []

    def visit(stmts):
        for node in stmts:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.extend((m, node.lineno) for m in _imported(node, name, path))
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


def _import_graph() -> dict[str, list[tuple[str, int]]]:
    """Module -> the hut modules it imports, at module level and inside its functions."""
    return {m: _module_level_imports(p, m) + [(dep, line) for dep, line, _ in _function_level_imports(p, m)]
            for m, p in MODULES.items()}


def _cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """A cycle of ``graph`` (node -> {node it imports: where}) as its nodes, first repeated last; None if none."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def dfs(n: str, stack: list[str]) -> list[str] | None:
        state[n] = 1
        for m in sorted(graph.get(n, {})):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [n, m] if m in stack else [n, m]
            if m not in state and (found := dfs(m, stack + [n])):
                return found
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := dfs(n, [])):
            return found
    return None


def _said(graph: dict[str, dict[str, str]], loop: list[str]) -> str:
    return "; ".join(graph[a][b] for a, b in zip(loop, loop[1:]))


def _module_graph(keep=lambda m: True) -> dict[str, dict[str, str]]:
    return {m: {dep: f"{MODULES[m].relative_to(PKG.parent)}:{line}" for dep, line in reversed(deps) if keep(dep)}
            for m, deps in _import_graph().items() if keep(m)}


def test_no_import_cycle_even_through_function_level_imports():
    graph = _module_graph()
    if loop := _cycle(graph):
        pytest.fail(f"import cycle: {' -> '.join(loop)} ({_said(graph, loop)})")


@pytest.mark.parametrize("b_imports_a", ["import hut.a\n", "def f():\n    import hut.a  # why\n"])
def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch, b_imports_a):
    """The check above on two files that import each other (at module level, or inside a function)."""
    (tmp_path / "a.py").write_text("from hut.b import x\n")
    (tmp_path / "b.py").write_text(b_imports_a)
    fake = {"hut.a": tmp_path / "a.py", "hut.b": tmp_path / "b.py"}
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    with pytest.raises(pytest.fail.Exception, match="import cycle: hut.a -> hut.b -> hut.a"):
        test_no_import_cycle_even_through_function_level_imports()


def _package(module: str) -> str:
    """The top-level part of ``hut`` a module belongs to: ``hut.results.tables.base`` -> ``hut.results``,
    ``hut.trainer`` -> itself."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_top_level_packages():
    """The module graph collapsed to ``hut``'s top-level parts (``hut.config``, ``hut.results``, ``hut.plan``,
    ``hut.trainer`` ...): what a reader sees of the layering has no cycle either, function-level imports
    included (two modules may each import from the other's package without a module cycle)."""
    graph: dict[str, dict[str, str]] = {}
    for m, deps in _import_graph().items():
        for dep, line in deps:
            a, b = _package(m), _package(dep)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {dep}")
    if loop := _cycle(graph):
        pytest.fail(f"package import cycle: {' -> '.join(loop)} ({_said(graph, loop)})")


def test_the_package_check_sees_a_cycle_without_a_module_cycle(tmp_path, monkeypatch):
    """hut.a.x imports hut.b.y, and hut.b.z imports hut.a.w: no module cycle, a package cycle."""
    files = {"hut.a.x": "from hut.b.y import v\n", "hut.a.w": "v = 1\n", "hut.b.y": "v = 1\n",
             "hut.b.z": "def f():\n    from hut.a.w import v  # why\n"}
    fake = {}
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
        fake[name] = tmp_path / f"{name}.py"
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    test_no_import_cycle_even_through_function_level_imports()  # no module cycle
    with pytest.raises(pytest.fail.Exception, match=r"package import cycle: hut.a -> hut.b -> hut.a"):
        test_no_import_cycle_between_top_level_packages()


def test_a_function_level_import_says_why():
    """An import of a hut module inside a function hides the dependency graph: it is at module level,
    unless a real cycle or a heavy optional import forces it, which a comment on it (or above it) says."""
    silent = [f"{p.relative_to(PKG.parent)}:{line} imports {dep}" for m, p in MODULES.items()
              for dep, line, said in _function_level_imports(p, m) if not said]
    assert not silent, "function-level imports without a reason (move them to the top, or say why):\n" + \
        "\n".join(silent)


def test_the_function_level_check_sees_a_silent_import(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("def f():\n    from hut.b import x\n    return x\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {"hut.a": tmp_path / "a.py", "hut.b": tmp_path / "b.py"})
    with pytest.raises(AssertionError, match=r"a.py:2 imports hut.b"):
        test_a_function_level_import_says_why()


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
    """Every file the suite writes goes through hut.files.atomic.write_atomic (temp file, fsync, rename):
    a temporary file next to its destination (``mkstemp(dir=...)``) is made in one place only.
    (Scratch files in the system's temp folder, such as the PTB tokenizer's input, are not results.)"""
    temp_files = _calls("mkstemp", keyword="dir")
    assert temp_files and all(c.startswith("hut/files/atomic.py:") for c in temp_files), temp_files


@pytest.mark.parametrize("name", ["versions", "SCHEMA_VERSION", "write_atomic", "compose", "cli_options", "run_paths",
                                  "record_failure", "identify", "fingerprint", "SavedTensors", "validate"])
def test_shared_helpers_are_defined_once(name):
    found = _defs(name) + [f"{p.relative_to(PKG.parent)}:{n.lineno}" for m, p in MODULES.items()
                           for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ClassDef) and n.name == name]
    assert len(found) == 1, found


def _name_calls(name: str) -> list[str]:
    """Where ``name(...)`` or ``<something>.name(...)`` is called."""
    return [f"{p.relative_to(PKG.parent)}:{n.lineno}" for m, p in MODULES.items() for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.Call) and name in (getattr(n.func, "id", None), getattr(n.func, "attr", None))]


def test_one_way_to_build_a_model_and_apply_a_method():
    """A model is loaded and its method applied in hut/build.py alone (the trainer, load_run, params,
    flops, precision, the bench and the plan all build through it)."""
    for name in ("load_model", "prepare_model"):
        sites = _name_calls(name)
        assert sites and all(s.startswith("hut/build.py:") for s in sites), (name, sites)


def test_one_run_store():
    """Where a run lives and what its records say are the run store's (hut.runs): the trainer asks it and
    nothing else about the disk, and only the commands that train import the trainer."""
    graph = _import_graph()
    trainer = {dep for dep, _ in graph["hut.trainer"]}
    assert not trainer & {"hut.files", "hut.files.atomic", "hut.files.lock", "hut.runs.identity", "hut.models"}, trainer
    users = sorted(m for m, deps in graph.items() if "hut.trainer" in {d for d, _ in deps})
    assert users == ["hut.bench.pipeline", "hut.train", "hut.tune.jobs"], users


def test_the_trainer_reads_top_to_bottom():
    """No function of hut/trainer.py over MAX_TRAINER_FUNCTION lines: a few steps, each readable."""
    path = MODULES["hut.trainer"]
    long = [f"{n.name}: {n.end_lineno - n.lineno + 1} lines" for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > MAX_TRAINER_FUNCTION]
    assert not long, long


def test_no_hand_written_key_value_parser():
    """Commands compose their arguments with Hydra (hut.config.cli_options / compose; their own keys
    apart from run overrides: hut.config.split_own), not by hand."""
    hits = [c for c in _calls("partition") if "\"=\"" in
            (PKG.parent / c.split(":")[0]).read_text().splitlines()[int(c.split(":")[1]) - 1]]
    assert all(h.startswith("hut/config/__init__.py:") for h in hits), hits
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


def _layer(module: str) -> int | None:
    for i, prefixes in enumerate(RESULTS_LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_results_imports_follow_its_layers_and_never_go_back_up():
    graph = _import_graph()
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
    graph = _module_graph(lambda m: m.startswith("hut.results"))
    if loop := _cycle(graph):
        pytest.fail("import cycle: " + " -> ".join(loop))


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


# Declared dependencies that no module imports by name, each with where it is used instead.
USED_WITHOUT_IMPORT = {
    "hydra-joblib-launcher": "configs/hydra/launcher/joblib.yaml (hydra/launcher=joblib)",
    "hydra-submitit-launcher": "configs/hydra/launcher/{slurm,submitit_local}.yaml",
    "pycocoevalcap": "hut/metrics/coco.py runs the METEOR and PTB tokenizer jars it ships (importlib.util.find_spec)",
}


def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them (case, ``-``, ``_`` and ``.`` folded)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _normal(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip())


def test_dependencies_are_declared_and_used():
    """Every third-party package the suite imports is declared in pyproject.toml, and every declared
    dependency is imported somewhere in hut/ (or listed above with where it is used)."""
    project = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    dist_of = {k: [_normal(d) for d in v] for k, v in md.packages_distributions().items()}
    imported: dict[str, str] = {}
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                for top in {n.split(".")[0] for n in _imported(node, m, p)}:
                    if top != "hut" and top not in sys.stdlib_module_names:
                        imported.setdefault(top, f"{p.relative_to(PKG.parent)}:{node.lineno}")
    undeclared = {top: where for top, where in imported.items()
                  if not declared & set(dist_of.get(top, [_normal(top)]))}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    used = {d for top in imported for d in dist_of.get(top, [_normal(top)])}
    unused = sorted(declared - used - set(USED_WITHOUT_IMPORT))
    assert not unused, f"declared in pyproject.toml but never imported (remove, or say where it is used): {unused}"
