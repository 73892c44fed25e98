"""One constructor signature per dataset, merged from the class and its bases.

A dataset declares only what is its own; everything a base class takes (batch sizes, the
validation carve-out, preprocessing, the tokenizer options of text datasets, ...) arrives through
``**options``::

    class UCRDataModule(ArrayDataModule):
        defaults = {"batch_size": 16, "val_size": 0.2}   # this dataset's own defaults for base options

        def __init__(self, name: str, data_dir: str = "data", **options: Any) -> None:
            super().__init__(**options)

:func:`merge_signature` (called for every subclass by ``ArrayDataModule.__init_subclass__``)
gives the class an ``__init__`` whose signature lists its own arguments followed by every base
argument (keyword-only), with ``defaults`` applied. A class that builds a part from some of its
options names the part's class in ``options_from`` (e.g. the text datasets' tokenizer), and that
class's arguments join the signature too. The config schema, which is generated from
the signature, therefore knows every key and still refuses unknown ones; calling the class binds
its arguments against that same signature (unknown keyword: ``TypeError``), so the defaults the
schema shows are the defaults the class uses.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

_MERGED = "__fusionlab_merged__"


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    if getattr(fn, _MERGED, False):
        return dict(fn.__annotations__)
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable forward reference: the parameter keeps no type
        return {}


def merge_signature(cls: type) -> None:
    """Give ``cls`` an ``__init__`` with the merged signature of its own and its bases' arguments."""
    own = vars(cls).get("__init__")
    parent_init = super(cls, cls).__init__  # the next class's (already merged) __init__
    params: list[inspect.Parameter] = []
    hints: dict[str, Any] = {}
    forwards = True  # the class passes the rest on to its base (``**options``, or no __init__ of its own)
    if own is not None:
        sig = inspect.signature(own)
        own_hints = _hints(own)
        forwards = False
        for name, p in sig.parameters.items():
            if p.kind is p.VAR_KEYWORD:
                forwards = True
                continue
            if p.kind is p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ may not take *args")
            params.append(p)
            if name in own_hints:
                hints[name] = own_hints[name]
    else:
        params.append(next(iter(inspect.signature(parent_init).parameters.values())))  # self
    if forwards:
        sources = [*(getattr(part, "__init__", part) for part in vars(cls).get("options_from", ())), parent_init]
        for source in sources:  # the arguments of parts the class builds (``options_from``), then its base's
            present = {p.name for p in params}
            source_hints = _hints(source)
            for name, p in list(inspect.signature(source).parameters.items()):
                if name in present or name in ("self", "cls") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    continue
                params.append(p.replace(kind=p.KEYWORD_ONLY))
                if name in source_hints:
                    hints[name] = source_hints[name]
    defaults = vars(cls).get("defaults", {})
    names = {p.name for p in params}
    unknown = sorted(set(defaults) - names)
    if unknown:
        raise TypeError(f"{cls.__name__}.defaults names {unknown}, which no __init__ of it or its bases takes")
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in params]
    merged = inspect.Signature(params)
    target = own if own is not None else parent_init

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            bound = merged.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{cls.__name__}: {e}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(params[0].name)
        target(self, **arguments)

    __init__.__signature__ = merged  # type: ignore[attr-defined]
    __init__.__annotations__ = hints
    __init__.__doc__ = getattr(target, "__doc__", None)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    setattr(__init__, _MERGED, True)
    cls.__init__ = __init__  # type: ignore[misc]
