"""A branch's, fusion's or embedding's YAML option file, generated from its class: one source for
every default.

The class is the source: its constructor's defaults are the keys' values, its docstring's summary
(the first paragraph) is the file's header comment and its ``Args:`` section gives the comment on
every key. ``python scripts/gen_option_files.py`` rewrites the files; ``--check`` (and
``tests/test_option_files.py``) fails when a file and its class could disagree.

    # @package model.fusion                     (fusions and embeddings only)
    # <summary>
    #
    # generated from <class> by `python scripts/gen_option_files.py`: edit the class, not this file
    _target_: <class>
    <key>: <default>         # <Args entry>
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

MARKER = "# generated from {target} by `python scripts/gen_option_files.py`: edit the class, not this file"
PACKAGES = {"fusion": "model.fusion", "embedding": "model.embedding"}  # groups placed under model.*
KEY_WIDTH = 28  # "key: value" padded to this width, then the comment (the conf/ files' style)
WRAP = 118


def generated_target(path: Path) -> str | None:
    """The class a generated file was generated from (None: the file is written by hand)."""
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"# generated from (\S+) by .*", line.strip())
        if match:
            return match.group(1)
    return None


def docstring_parts(cls: type) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph (one line) and its ``Args:`` entries (name -> text)."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    summary = " ".join(doc.split("\n\n")[0].split())
    args: dict[str, str] = {}
    match = re.search(r"^Args:\n((?:(?: {4}.*)?\n?)+)", doc, flags=re.MULTILINE)
    if match:
        name = None
        for line in match.group(1).splitlines():
            entry = re.fullmatch(r" {4}(\w+): (.*)", line)
            if entry:
                name = entry.group(1)
                args[name] = entry.group(2).strip()
            elif name and line.startswith(" " * 8):
                args[name] += " " + line.strip()
    return summary, args


def parameters(cls: type) -> list[inspect.Parameter]:
    """The constructor arguments a config sets (``injected`` shapes and ``*args``/``**kwargs`` left out)."""
    injected = set(getattr(cls, "injected", ()))
    return [p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and name not in injected and not name.startswith("_")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def yaml_value(value: Any) -> str:
    """``value`` as one flow-style YAML scalar or list (tuples as lists; ``???`` when required)."""
    if value is inspect.Parameter.empty:
        return "???"
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def option_file(cls: type, group: str, target: str | None = None) -> str:
    """The text of ``cls``'s option file in config group ``group`` (``target``: the dotted name the
    file uses for the class, default its public import path)."""
    target = target or public_name(cls)
    summary, args = docstring_parts(cls)
    lines = [f"# @package {PACKAGES[group]}"] if group in PACKAGES else []
    lines += textwrap.wrap(summary, WRAP - 2, initial_indent="# ", subsequent_indent="# ")
    lines += ["#", MARKER.format(target=target), f"_target_: {target}"]
    missing = []
    for p in parameters(cls):
        if p.name not in args:
            missing.append(p.name)
            continue
        kv = f"{p.name}: {yaml_value(p.default)}"
        lines.append(f"{kv:<{KEY_WIDTH}} # {args[p.name]}" if len(kv) <= KEY_WIDTH else f"{kv} # {args[p.name]}")
    if missing:
        raise ValueError(f"{cls.__name__}'s docstring has no Args entry for {missing}")
    return "\n".join(lines) + "\n"


def public_name(cls: type) -> str:
    """``package.Name`` when the class is exported by its package (``fusionlab.fusions.GatedFusion``),
    else ``module.Name``."""
    package = cls.__module__.rpartition(".")[0]
    module = __import__(package, fromlist=[cls.__name__]) if package else None
    if module is not None and getattr(module, cls.__name__, None) is cls:
        return f"{package}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"
