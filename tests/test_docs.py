"""The docs (README.md and docs/*.md) stay current with the code.

* every `make` target of the Makefile, every `configs/experiment/*.yaml` and every `python -m hut.…`
  entry point (a module with a ``__main__`` guard, or a package's ``__main__.py``) is named in them,
  and every `python -m hut.…` they name is one;
* every repo path they name in inline code or a link (`hut/…`, `configs/…`, `scripts/…`,
  `results/…`, `docs/…`, `tests/…`, `examples/…`) exists, every dotted `hut.…` name resolves to a
  module or a name defined in one, and every link to a page's heading finds it;
* every `README "Section"` that the code, configs, scripts and tests point to is a README heading;
* the README is at most 250 lines.

Read from the files (no import of ``hut``), so it takes well under a second. Each check returns the
problems it finds; ``test_each_check_fails_on_a_constructed_case`` builds a small repository with one
fault of each kind and shows that every check reports it.
"""
from __future__ import annotations

import ast
import fnmatch
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
PATH_ROOTS = ("hut", "configs", "scripts", "results", "docs", "tests", "examples")
# Outputs the docs name that no committed file holds yet: each is written by the command named in the
# docs when it runs. An entry that exists now leaves this list (test_not_yet_written_outputs_are_absent).
NOT_YET_WRITTEN = {
    "results/demo_parts": "make demo-parts (not committed)",
    "results/tables/parts.*": "python -m hut.aggregate experiment=parts (no GPU runs yet)",
    "results/tables/figure4.*": "python -m hut.tables.figure4 experiment=figure4 (no GPU runs yet)",
    "results/figures/figure4*": "the same",
    "results/bench/*-cuda*": "make gpu-check (no CUDA machine has run it)",
}
# Files the docs name as examples of what a contributor adds (docs/DESIGN.md, "Adding a method").
EXAMPLES = {"hut/methods/mymethod.py", "configs/method/mymethod.yaml"}
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:%s)/(?:[^\s`'\"(),;{}]|\{[^{}\s]*\})*)" % "|".join(PATH_ROOTS))
DOTTED = re.compile(r"(?<![\w./])(hut(?:\.\w+)+)")
PY_M = re.compile(r"python -m (hut(?:\.\w+)+)")
README_REF = re.compile(r"README[,:]? [\"'“]([^\"'”]+)[\"'”]")


# ------------------------------------------------------------------ reading the docs

def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def docs_text(root: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in doc_files(root))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation out, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M)]


# ------------------------------------------------------------------ what the code has

def make_targets(root: Path) -> list[str]:
    return re.findall(r"^([a-z0-9][a-z0-9_-]*):(?!=)", (root / "Makefile").read_text(), re.M)


def experiments(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "configs" / "experiment").glob("*.yaml"))


def _has_main_guard(path: Path) -> bool:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test):
            return True
    return False


def entry_points(root: Path) -> list[str]:
    """``python -m`` names: every module with a ``__main__`` guard, every package with ``__main__.py``."""
    out = set()
    for p in (root / "hut").rglob("*.py"):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__main__":
            out.add(".".join(parts[:-1]))
        elif parts[-1] != "__init__" and _has_main_guard(p):
            out.add(".".join(parts))
    return sorted(out)


# ------------------------------------------------------------------ the checks (each returns its problems)

def unnamed(root: Path) -> list[str]:
    """Make targets, experiment files and entry points the docs do not name."""
    text = docs_text(root)
    problems = [f"make target '{t}' is not named (`make {t}`)" for t in make_targets(root)
                if not re.search(rf"make {re.escape(t)}(?![\w-])", text)]
    problems += [f"experiment '{e}' is not named (experiment={e}, `{e}` or configs/experiment/{e}.yaml)"
                 for e in experiments(root)
                 if not re.search(rf"experiment={e}(?![\w-])|`{e}`|configs/experiment/{e}\.yaml", text)]
    problems += [f"entry point '{m}' is not named (python -m {m})" for m in entry_points(root)
                 if not re.search(rf"python -m {re.escape(m)}(?![\w.])", text)]
    known = set(entry_points(root))
    problems += [f"'python -m {m}' is named but {m} is no entry point"
                 for m in sorted(set(PY_M.findall(text))) if m not in known]
    return problems


def _expand(pattern: str) -> list[str]:
    """Brace alternatives (`a.{md,tex}`, `figure4{,_x}`) expanded; `<placeholder>` becomes `*`,
    an optional `[part]` is dropped."""
    pattern = re.sub(r"<[^<>]+>", "*", re.sub(r"\[[^\[\]]*\]", "", pattern))
    pieces = re.split(r"\{([^{}]*)\}", pattern)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(pieces)]
    return ["".join(c) for c in itertools.product(*options)]


def _ignored_dirs(root: Path) -> list[str]:
    gi = root / ".gitignore"
    lines = gi.read_text().splitlines() if gi.is_file() else []
    return [ln.strip().lstrip("/") for ln in lines if ln.strip().endswith("/") and "/" in ln.strip()[:-1]]


def _exists(root: Path, pattern: str) -> bool:
    for p in _expand(pattern):
        p = p.rstrip("/").rstrip(".").rstrip(":")
        if "*" in p or "?" in p:
            if any(root.glob(p)):
                return True
        elif (root / p).exists():
            return True
    return False


def _not_yet_written(path: str) -> bool:
    return all(any(p == e or p.startswith(e + "/") or fnmatch.fnmatch(p, e) for e in NOT_YET_WRITTEN)
               for p in _expand(path))


def _named_paths(text: str) -> list[str]:
    body = FENCE.sub("", text)
    found = []
    for code in INLINE.findall(body):
        found += PATH.findall(code)
    return found


def missing_paths(root: Path) -> list[str]:
    """Repo paths named in inline code that do not exist (run outputs in git-ignored folders and the
    outputs listed in NOT_YET_WRITTEN excepted)."""
    ignored = _ignored_dirs(root)
    problems = []
    for doc in doc_files(root):
        for raw in _named_paths(doc.read_text(encoding="utf-8")):
            path = raw.split("::")[0]
            if "..." in path or "…" in path or any(path == d.rstrip("/") or path.startswith(d) for d in ignored):
                continue
            if path in EXAMPLES or _not_yet_written(path) or _exists(root, path):
                continue
            problems.append(f"{doc.relative_to(root)}: `{raw}` does not exist")
    return problems


def broken_links(root: Path) -> list[str]:
    """Relative links whose file does not exist, or whose #anchor is no heading of that page."""
    problems = []
    for doc in doc_files(root):
        for target in LINK.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            where = f"{doc.relative_to(root)}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in {slug(h) for h in headings(dest)}:
                problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def unresolved_names(root: Path) -> list[str]:
    """Dotted `hut.…` names in inline code that are neither a module nor a name defined in one."""
    problems = []
    for doc in doc_files(root):
        for code in INLINE.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
            for dotted in DOTTED.findall(code):
                parts = dotted.split(".")
                # the longest prefix that is a module; the next part must be defined in it
                for i in range(len(parts), 0, -1):
                    mod = _module_file(root, ".".join(parts[:i]))
                    if mod is not None:
                        break
                if mod is None or (i < len(parts) and parts[i] not in _defined_names(mod)):
                    problems.append(f"{doc.relative_to(root)}: `{dotted}` is no module or name of one")
    return problems


def dangling_readme_refs(root: Path) -> list[str]:
    """`README "Section"` in code, configs, scripts, examples and tests that names no README heading."""
    heads = {h.lower() for h in headings(root / "README.md")}
    problems = []
    for folder in ("hut", "configs", "scripts", "examples", "tests"):
        for p in sorted((root / folder).rglob("*")):
            if p.suffix not in (".py", ".yaml", ".sh") or p.name == "test_docs.py":
                continue
            for m in README_REF.finditer(p.read_text(encoding="utf-8")):
                if m.group(1).lower() not in heads:
                    problems.append(f"{p.relative_to(root)}: README \"{m.group(1)}\" is no README heading")
    return problems


def readme_too_long(root: Path) -> list[str]:
    n = len((root / "README.md").read_text(encoding="utf-8").splitlines())
    return [f"README.md has {n} lines (at most {README_MAX_LINES})"] if n > README_MAX_LINES else []


CHECKS = (unnamed, missing_paths, broken_links, unresolved_names, dangling_readme_refs, readme_too_long)


# ------------------------------------------------------------------ the repository

def test_the_inventory_is_not_empty():
    """What the docs must name is found (else every check below would pass on nothing)."""
    assert make_targets(ROOT) and experiments(ROOT) and len(entry_points(ROOT)) > 10
    assert len(_named_paths(docs_text(ROOT))) > 100 and len(doc_files(ROOT)) > 5


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_docs_are_current(check):
    assert check(ROOT) == []


def test_not_yet_written_outputs_are_absent():
    """An output that now exists leaves NOT_YET_WRITTEN (the path check then covers it)."""
    assert [p for p in NOT_YET_WRITTEN if _exists(ROOT, p)] == []


# ------------------------------------------------------------------ the checks can fail

def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


def test_each_check_fails_on_a_constructed_case(tmp_path):
    """A small repository with one fault of each kind: every check reports its fault, and only it."""
    r = tmp_path
    _write(r, "Makefile", "help: ## the targets\n\t@true\nforgotten: ## never named\n\t@true\nX := 1\n")
    _write(r, "configs/experiment/named.yaml", "{}\n")
    _write(r, "configs/experiment/orphan.yaml", "{}\n")
    _write(r, "hut/__init__.py", "")
    _write(r, "hut/tool.py", "def run():\n    pass\n\nif __name__ == '__main__':\n    run()\n")
    _write(r, "hut/hidden.py", "if __name__ == \"__main__\":\n    pass\n")
    _write(r, "hut/plan/__init__.py", "LIMIT = 1\n")
    _write(r, "hut/plan/__main__.py", "")
    _write(r, "hut/config.py", "# see README \"Gone away\"; README 'Start'\n")
    _write(r, "results/kept.md", "x\n")
    _write(r, ".gitignore", "results/runs/\n")
    _write(r, "docs/a.md", "# Page A\n\n## Some part\n\nSee [b](b.md), [missing](nope.md), [anchor](#some-part), "
                           "[bad anchor](#no-such-part), [web](https://example.org).\n")
    _write(r, "README.md", "# Start\n\n`make help`, `python -m hut.tool`, `python -m hut.plan`, "
                           "`python -m hut.gone`, experiment=named.\n"
                           "`results/kept.md`, `results/lost.md`, `results/runs/x/metrics.json`, "
                           "`python scripts/absent.py`, `hut.tool.run`, `hut.plan.LIMIT`, `hut.tool.nothing`, "
                           "`hut.nowhere.x`.\n" + "line\n" * 247)
    assert unnamed(r) == ["make target 'forgotten' is not named (`make forgotten`)",
                          "experiment 'orphan' is not named (experiment=orphan, `orphan` or configs/experiment/orphan.yaml)",
                          "entry point 'hut.hidden' is not named (python -m hut.hidden)",
                          "'python -m hut.gone' is named but hut.gone is no entry point"]
    assert missing_paths(r) == ["README.md: `results/lost.md` does not exist",
                                "README.md: `scripts/absent.py` does not exist"]
    assert broken_links(r) == ["docs/a.md: (b.md): no such file", "docs/a.md: (nope.md): no such file",
                               "docs/a.md: (#no-such-part): no heading with anchor #no-such-part in a.md"]
    assert unresolved_names(r) == ["README.md: `hut.gone` is no module or name of one",
                                   "README.md: `hut.tool.nothing` is no module or name of one",
                                   "README.md: `hut.nowhere.x` is no module or name of one"]
    assert dangling_readme_refs(r) == ["hut/config.py: README \"Gone away\" is no README heading"]
    assert readme_too_long(r) == ["README.md has 251 lines (at most 250)"]


def test_slugs_are_githubs():
    assert slug("The rank finding: HUT ≡ `hut_compact`") == "the-rank-finding-hut--hut_compact"
    assert slug("python -m commands") == "python--m-commands"
    assert slug("On the CPU: `make demo-parts`") == "on-the-cpu-make-demo-parts"
