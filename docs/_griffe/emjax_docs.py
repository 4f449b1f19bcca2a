"""Griffe extension used by the documentation build (``mkdocs.yml``), not by emjax itself.

What griffe's static analysis and Markdown do not know about emjax's docstrings:

1. ``eqx.Module`` subclasses are dataclasses whose ``__init__`` equinox writes at class
   creation. Griffe only recognises ``@dataclass``, so without help a Module such as
   `emjax.OnlineEM` would have no signature and every name in its ``Args:`` section would
   be reported as "not in the signature". For each Module class without an ``__init__`` in
   its source, the extension imports the class and copies the signature that
   ``inspect.signature`` reports for the real one.
2. emjax's docstrings head their examples ``Example:``, a heading the Google convention
   (and Sphinx's napoleon) accepts but griffe reads as an admonition, so the ``>>>`` lines
   would render as nested block quotes. The extension renames the heading to
   ``Examples:`` before the docstring is parsed.
3. A few ``Args:`` sections end with a sentence at the indentation of the argument names
   (e.g. "A leading restart axis on every array gives a batch for ``params0``." in
   ``make_params``). Griffe cannot read it as a ``name: description`` pair and drops it
   with a warning; the extension indents such a line so that it continues the previous
   argument, which is what it means.
4. Some docstrings hold display math as reStructuredText (``.. math::`` and an indented
   block), which Markdown would show as a paragraph and a code block. The extension turns
   each such block into ``$$ ... $$`` for MathJax (``pymdownx.arithmatex``).
5. Some ``Args:`` entries document several parameters at once (``rtol, atol: ...``), which
   griffe reads as one parameter named "rtol, atol" that is not in the signature. The
   extension writes one entry per name, each with the shared description, so that every
   name is still checked against the signature.

Each rewrite is logged at debug level. Docstrings in emjax stay as they are; the report
that introduced this file lists the source edits that would make rewrites 2-5 unnecessary.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from typing import Any

import griffe

_logger = logging.getLogger("griffe.emjax_docs")

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_RST_MATH = re.compile(r"^(\s*)\.\. math::[ \t]*$")
_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):[ \t]*$")
_ITEM = re.compile(r"^\*{0,2}\w+(\s*\([^)]*\))?(\s*,\s*\w+)*\s*:")
_MULTI = re.compile(r"^(\w+(?:\s*,\s*\w+)+)\s*:")


def _fix_args_blocks(text: str) -> str:
    """Rewrites 3 and 5 (see the module docstring) inside ``Args:``-like blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        section = _SECTION.match(lines[i])
        out.append(lines[i])
        i += 1
        if not section:
            continue
        section_indent = len(section.group(1))
        # The items of the block: a header line at the item indentation, then its
        # continuation lines (deeper, or blank lines followed by deeper ones).
        item_indent = None
        items: list[list[str]] = []
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if not stripped:
                nxt = next((x for x in lines[i + 1 :] if x.strip()), "")
                nxt_indent = len(nxt) - len(nxt.lstrip())
                continues = nxt_indent > (item_indent or 0) or (
                    nxt_indent == item_indent and not _ITEM.match(nxt.strip())
                )
                if items and nxt and item_indent is not None and continues:
                    items[-1].append(line)
                    i += 1
                    continue
                break
            if indent <= section_indent:
                break
            if item_indent is None:
                item_indent = indent
            if indent == item_indent and _ITEM.match(stripped):
                items.append([line])
            elif indent == item_indent and items:
                # A sentence at item level that is not an item: it continues the previous one.
                _logger.debug("continuing stray Args line: %s", stripped)
                items[-1].append(" " * 4 + line)
            elif items:
                items[-1].append(line)
            else:
                items.append([line])
            i += 1
        for item in items:
            header = item[0]
            names = _MULTI.match(header.strip())
            if not names:
                out.extend(item)
                continue
            # ``a, b: description`` documents several parameters at once: one entry each.
            _logger.debug("splitting Args entry: %s", names.group(1))
            rest = header.strip()[len(names.group(0)) :]
            for name in re.split(r"\s*,\s*", names.group(1)):
                out.append(" " * item_indent + f"{name}:{rest}")
                out.extend(item[1:])
    return "\n".join(out)


def _rst_math_to_dollars(text: str) -> str:
    """Replace each ``.. math::`` directive and its indented body by a ``$$`` block."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        match = _RST_MATH.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group(1)
        i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(indent + " ")):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        text_lines = [b.strip() for b in body if b.strip()]
        _logger.debug("rst math -> $$: %s", " ".join(text_lines))
        out.extend([indent + "$$", *(indent + b for b in text_lines), indent + "$$"])
        if i < len(lines):
            out.append("")
    return "\n".join(out)


def _normalise(text: str) -> str:
    text = _EXAMPLE_HEADING.sub(r"\1Examples:", text)
    return _fix_args_blocks(_rst_math_to_dollars(text))


def _runtime_object(obj: griffe.Object) -> Any:
    module = importlib.import_module(obj.module.path)
    value: Any = module
    for part in obj.path[len(obj.module.path) + 1 :].split("."):
        value = getattr(value, part)
    return value


def _parameter(p: inspect.Parameter) -> griffe.Parameter:
    kind = griffe.ParameterKind[p.kind.name.lower()]
    default = None if p.default is inspect.Parameter.empty else repr(p.default)
    return griffe.Parameter(p.name, annotation=None, kind=kind, default=default)


class EmjaxDocs(griffe.Extension):
    """Equinox signatures and docstring headings for the emjax documentation."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _normalise(obj.docstring.value)

    def on_class(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if "__init__" in cls.members:
            return
        try:
            import equinox as eqx

            runtime = _runtime_object(cls)
        except Exception:  # noqa: BLE001 - a class griffe sees but Python cannot import
            return
        if not (isinstance(runtime, type) and issubclass(runtime, eqx.Module)):
            return
        try:
            signature = inspect.signature(runtime.__init__)
        except (TypeError, ValueError):
            return
        init = griffe.Function("__init__", lineno=0, endlineno=0, parent=cls)
        init.parameters = griffe.Parameters(*(_parameter(p) for p in signature.parameters.values()))
        init.returns = "None"
        cls.set_member("__init__", init)
