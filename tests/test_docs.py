"""The documentation site: it builds without warnings, covers the public API, and its code runs.

- `test_strict_build` runs ``mkdocs build --strict`` (skipped, with the reason, when MkDocs
  and mkdocstrings are not installed: ``pip install -e ".[docs]"``).
- `test_every_public_name_is_in_the_reference` reads the ``::: identifier`` lines of
  ``docs/api/*.md`` and fails when a public name of ``emjax`` (or of ``emjax.hmm``,
  ``emjax.lda``, ``emjax.datasets``) has no entry. It needs no MkDocs.
- `test_page_snippets_run` (slow) runs every ``python`` code block of a page, in order, in
  a fresh interpreter, so that the pages cannot drift from the API. A block preceded by the
  line ``<!-- no-run -->`` is shown but not run (multi-process launch scripts).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import emjax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Submodules whose public names (``__all__``) must each have their own reference entry.
SUBMODULES = ("emjax.hmm", "emjax.lda", "emjax.datasets", "emjax.plot")
# Optional public modules documented once they exist in the tree.
OPTIONAL_MODULES = ("emjax.sklearn",)

_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def _directives() -> list[str]:
    """The identifiers of every ``::: identifier`` line of the reference pages."""
    names = []
    for page in sorted((DOCS / "api").glob("*.md")):
        names.extend(_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return names


_MISSING = object()


def _resolve(path: str):
    """The object a dotted path names (a module, or an attribute of the longest module
    prefix), or `_MISSING`."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            value = getattr(value, attr, _MISSING)
            if value is _MISSING:
                return _MISSING
        return value
    return _MISSING


def _exported_names() -> list[str]:
    """The names ``emjax/__init__.py`` re-exports (``from ... import x as x``), read from its
    source: ``dir(emjax)`` would also list submodules that other tests happened to import
    (``emjax.cli``), which depends on the order the tests run in."""
    tree = ast.parse(Path(emjax.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names += [a.asname for a in node.names if a.asname and not a.asname.startswith("_")]
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets
                      if isinstance(t, ast.Name) and not t.id.startswith("_")]
    return names


def _public_names() -> set[str]:
    names = {f"emjax.{name}" for name in _exported_names()}
    for modname in SUBMODULES:
        module = importlib.import_module(modname)
        names.add(modname)
        names.update(f"{modname}.{n}" for n in module.__all__)
    for modname in OPTIONAL_MODULES:
        try:
            module = importlib.import_module(modname)
        except ImportError:  # not in the tree yet, or its optional dependency is missing
            continue
        names.add(modname)
        names.update(f"{modname}.{n}" for n in getattr(module, "__all__", ()))
    return names


def _coverage() -> dict[str, str | None]:
    """Each public name and the reference entry that documents it (None if none does).

    An entry documents a name when it is the name itself, or a path to the same object
    (e.g. a class documented at its defining module because its package imports it lazily).
    """
    directives = _directives()
    by_identity = {}
    for path in directives:
        value = _resolve(path)
        if value is not _MISSING:
            by_identity.setdefault(id(value), path)
    covered = {}
    for name in sorted(_public_names()):
        if name in directives:
            covered[name] = name
        else:
            value = _resolve(name)
            covered[name] = None if value is _MISSING else by_identity.get(id(value))
    return covered


def test_every_public_name_is_in_the_reference():
    missing = sorted(name for name, entry in _coverage().items() if entry is None)
    assert not missing, (
        "public names with no `::: name` entry in docs/api/*.md (add them to a reference "
        f"page): {missing}"
    )


def test_reference_entries_exist():
    # An entry for a name that no longer exists would also fail the build; this says which.
    stale = sorted(path for path in _directives() if _resolve(path) is _MISSING)
    assert not stale, f"reference entries for names that do not exist: {stale}"


def test_strict_build(tmp_path):
    pytest.importorskip("mkdocs", reason="MkDocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip(
        "mkdocstrings_handlers.python",
        reason="mkdocstrings[python] is not installed (pip install -e '.[docs]')",
    )
    pytest.importorskip("material", reason="mkdocs-material is not installed")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    # Every public name has a rendered heading (the anchor of the entry that documents it).
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    unrendered = sorted(
        name for name, entry in _coverage().items() if entry and f'id="{entry}"' not in html
    )
    assert not unrendered, f"names without a rendered heading in the API reference: {unrendered}"
    # The benchmark figures are included from benchmarks/README.md, not copied.
    bench = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "block_size.py" in bench and "--8&lt;--" not in bench


_NO_RUN = "<!-- no-run -->"
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    """The ``python`` code blocks of a Markdown page, without those marked no-run."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if before.strip() != _NO_RUN:
            blocks.append(match.group(1))
    return blocks


_PAGES = sorted(
    str(p.relative_to(DOCS))
    for p in DOCS.rglob("*.md")
    if "_griffe" not in p.parts and python_blocks(p)
)


@pytest.mark.slow
@pytest.mark.parametrize("page", _PAGES)
def test_page_snippets_run(page, tmp_path):
    # Each page runs in a fresh interpreter in float32 (JAX's default), as a reader would,
    # except for blocks that turn float64 on themselves.
    script = "\n\n".join(python_blocks(DOCS / page))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{page}: a code block failed:\n{proc.stdout}\n{proc.stderr}"
