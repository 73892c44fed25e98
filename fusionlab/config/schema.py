"""Typed schemas for config nodes, generated from the signature of the class they build.

Every node with a ``_target_`` is checked against a dataclass made from its target's
``__init__`` signature (names, type hints, defaults), the way hydra-zen's ``builds`` does:
a misspelt key, a wrong type or a missing value fails right after composition, before any
data is loaded, with an error that names the full key. Numeric ranges come from
``typing.Annotated`` hints such as :data:`PositiveInt` and :data:`Probability`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import types
import typing
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field
from typing import Annotated, Any, Optional, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError


class ConfigError(ValueError):
    """An invalid config value: ``key`` is the full dotted path, ``message`` what was expected."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key placed under ``prefix``."""
        key = ".".join(p for p in (prefix, self.key) if p)
        return ConfigError(key, self.message)


@dataclass(frozen=True)
class Range:
    """Bounds for a numeric config value; ``None`` means unbounded."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def violation(self, value: Any) -> str | None:
        """A message when ``value`` (a number or a list of numbers) is out of range, else None."""
        values = value if isinstance(value, (list, tuple, ListConfig)) else [value]
        for v in values:
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if self.gt is not None and not v > self.gt:
                return f"must be > {self.gt}, got {v}"
            if self.ge is not None and not v >= self.ge:
                return f"must be >= {self.ge}, got {v}"
            if self.lt is not None and not v < self.lt:
                return f"must be < {self.lt}, got {v}"
            if self.le is not None and not v <= self.le:
                return f"must be <= {self.le}, got {v}"
        return None


@dataclass(frozen=True)
class OneOf:
    """The value must be one of ``choices``."""

    choices: tuple[str, ...]

    def violation(self, value: Any) -> str | None:
        if value in self.choices:
            return None
        return f"must be one of {list(self.choices)}, got {value!r}"


@dataclass(frozen=True)
class Number:
    """The value must be a number (for arguments typed loosely, such as torch's ``lr: float | Tensor``)."""

    def violation(self, value: Any) -> str | None:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return None
        return f"expected a number, got {value!r}"


PositiveInt = Annotated[int, Range(gt=0)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Probability = Annotated[float, Range(ge=0.0, lt=1.0)]  # dropout-like rates: 1.0 would zero everything
UnitProbability = Annotated[float, Range(ge=0.0, le=1.0)]  # probabilities of applying something
PositiveInts = Annotated[list[int], Range(gt=0)]


def choice(*choices: str) -> Any:
    """``Annotated[str, OneOf(...)]``: a string restricted to ``choices``."""
    return Annotated[str, OneOf(tuple(choices))]


_HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
_SIMPLE = (int, float, str, bool)


def _omegaconf_type(hint: Any) -> Any:
    """Map a type hint to one OmegaConf can enforce; fall back to ``Any``."""
    if hint in _SIMPLE or hint is Any:
        return hint
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _omegaconf_type(args[0])
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = _omegaconf_type(rest[0])
            return Any if inner is Any else Optional[inner]  # noqa: UP045 (OmegaConf needs Optional)
        return Any
    if origin in (list, tuple, typing.Sequence, __import__("collections.abc").abc.Sequence):
        inner = args[0] if args else Any
        inner = _omegaconf_type(inner)
        return list[inner] if inner in _SIMPLE else list[Any]
    if origin is dict:
        return dict[str, Any]
    return Any


def _constraints(hint: Any) -> tuple[Any, ...]:
    found: list[Any] = []
    origin = typing.get_origin(hint)
    if origin is Annotated:
        found += [a for a in typing.get_args(hint)[1:] if hasattr(a, "violation")]
        found += _constraints(typing.get_args(hint)[0])
    elif origin in (Union, types.UnionType):
        for a in typing.get_args(hint):
            found += _constraints(a)
    return tuple(found)


def locate(path: str) -> Any:
    """Import ``package.module.Name`` (or a nested attribute) from its dotted path."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


@functools.cache
def schema_for(target: Any) -> type:
    """A dataclass with one typed field per constructor argument of ``target``.

    Arguments listed in the target's ``injected`` attribute (shapes known only once the data
    is loaded, such as ``in_channels``) are left out: the user never sets them.
    """
    fn = target.__init__ if inspect.isclass(target) else target
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature
        sig = inspect.Signature()
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: keep names, drop types
        hints = {}
    injected = set(getattr(target, "injected", ()))
    fields: list[tuple[str, Any, Any]] = [(k, Any, field(default=None)) for k in _HYDRA_KEYS]
    open_ended = False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and inspect.isclass(target) and name in ("self", "cls"):
            continue
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            open_ended = open_ended or p.kind is p.VAR_KEYWORD
            continue
        if name in injected or name.startswith("_"):
            continue
        hint = hints.get(name, Any)
        typ = _omegaconf_type(hint)
        constraints = _constraints(hint)
        default = p.default
        if default is inspect.Parameter.empty:
            f = field(default=MISSING, metadata={"constraints": constraints})
        elif isinstance(default, (list, dict, tuple)):
            value = list(default) if isinstance(default, tuple) else default
            f = field(default_factory=functools.partial(_copy, value), metadata={"constraints": constraints})
        else:
            if default is None and typ is not Any and typing.get_origin(typ) is not Union:
                typ = Optional[typ]  # noqa: UP045
            if not isinstance(default, (*_SIMPLE, type(None))):
                typ, default = Any, None  # objects (callables, modules) cannot live in a config
            if typ is Any and isinstance(default, (int, float)) and not isinstance(default, bool):
                constraints = (*constraints, Number())  # a loose hint (float | Tensor) with a number default
            f = field(default=default, metadata={"constraints": constraints})
        fields.append((name, typ, f))
    name = f"{getattr(target, '__name__', 'Target')}Config"
    schema = dataclasses.make_dataclass(name, fields, kw_only=True)
    schema.__open_ended__ = open_ended  # type: ignore[attr-defined]
    return schema


def _copy(value: Any) -> Any:
    return OmegaConf.to_container(OmegaConf.create(value)) if isinstance(value, (list, dict)) else value


def iter_targets(node: Any, path: str = "") -> Iterator[tuple[str, DictConfig]]:
    """Yield ``(dotted_path, node)`` for every node holding a ``_target_``, outermost first."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            if OmegaConf.is_missing(node, key):
                continue
            yield from iter_targets(node[key], f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from iter_targets(item, f"{path}[{i}]")


def check_constraints(schema: type, values: Any, path: str) -> None:
    """Raise :class:`ConfigError` for the first field whose value breaks its declared range."""
    for f in dataclasses.fields(schema):
        for c in f.metadata.get("constraints", ()):
            if f.name not in values:
                continue
            problem = c.violation(values[f.name])
            if problem:
                raise ConfigError(f"{path}.{f.name}" if path else f.name, problem)


def validate_node(node: DictConfig, path: str, allowed_targets: tuple[str, ...] = ()) -> None:
    """Check one ``_target_`` node: the target is registered (:mod:`fusionlab.registry`) or listed in
    ``allowed_targets``, importable, and its keys exist and their types fit."""
    from fusionlab.registry import check_config_target

    target_path = node.get("_target_")
    check_config_target(target_path, path, allowed_targets)
    try:
        target = locate(str(target_path))
    except (ImportError, AttributeError):
        raise ConfigError(f"{path}._target_" if path else "_target_", f"cannot import '{target_path}'") from None
    schema = schema_for(target)
    names = {f.name for f in dataclasses.fields(schema)}
    if not schema.__open_ended__:
        for key in node:
            if key not in names:
                expected = sorted(n for n in names if not n.startswith("_"))
                raise ConfigError(
                    f"{path}.{key}" if path else str(key),
                    f"unknown key for {target.__name__}; expected one of {expected}",
                )
    present = [k for k in node if k in names]
    base = _type_checker(schema)
    for key in present:
        try:
            base[key] = node[key]
        except MissingMandatoryValue:
            raise ConfigError(f"{path}.{key}", "a value is required (got ???)") from None
        except (ValidationError, ConfigKeyError) as e:
            problem = _short(e)
            if OmegaConf.is_interpolation(node, key):  # name the key the bad value came from
                problem += f" (the value comes from {node._get_node(key)._value()})"
            raise ConfigError(f"{path}.{key}", problem) from None
    partial = bool(node.get("_partial_")) or "_args_" in node  # the rest is passed in later
    for f in dataclasses.fields(schema):
        if partial:
            break
        if f.name not in node and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{path}.{f.name}" if path else f.name, f"required by {target.__name__} but not set")
    check_constraints(schema, {k: node[k] for k in present}, path)


@functools.cache
def _type_checker(schema: type) -> DictConfig:
    """A structured config of ``schema`` whose fields take the values to type-check (OmegaConf converts or
    refuses each assignment); built once per schema, as only the assignments are read."""
    return OmegaConf.structured(schema)


def _short(e: Exception) -> str:
    msg = getattr(e, "msg", None) or str(e)
    return msg.splitlines()[0]


def validate_targets(cfg: DictConfig, allowed_targets: tuple[str, ...] = ()) -> None:
    """Validate every ``_target_`` node in ``cfg`` (the user's own config); raise :class:`ConfigError`
    on the first problem. ``allowed_targets``: exact class names beyond the registry."""
    for path, node in iter_targets(cfg):
        validate_node(node, path, allowed_targets)


def check_constraints_tree(schema: type, cfg: Any, path: str = "") -> None:
    """Range-check ``cfg`` against a (nested) dataclass schema's field constraints."""
    if cfg is None:
        return
    check_constraints(schema, {f.name: cfg[f.name] for f in dataclasses.fields(schema) if f.name in cfg}, path)
    for name, hint in typing.get_type_hints(schema).items():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and name in cfg:
            check_constraints_tree(hint, cfg[name], f"{path}.{name}" if path else name)
