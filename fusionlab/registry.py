"""The one registry: what a config may instantiate (``_target_``), and which options exist.

* **Project classes** register themselves. A base class that mixes in :class:`Registrable` and
  sets ``registry_kind`` (``Branch`` → ``"branch"``, ``Fusion`` → ``"fusion"``, ...) registers every
  subclass when Python defines it, in the package or in a user's own module; a standalone class
  uses the :func:`register` decorator. Name-based parts (poolers, views) register with a ``name``.
* **Library classes** are a named list (:data:`LIBRARY`): torch optimizers, LR schedulers and
  losses, Lightning's Trainer, callbacks and loggers, Optuna's pruners. Nothing else of torch or
  Lightning is reachable (``torch.load``, ``torch.hub.load`` and ``builtins.eval`` are not).
* **Users** extend it with ``allowed_targets: [exact.dotted.Name]`` in their config.

A config read from a file that is data (the config saved in a checkpoint) is checked with
:func:`check_saved_config`: every ``_target_`` (nested, in ``_args_``, in lists), every Hydra
flag and every value is checked on the *string*, before anything is imported, since importing a
module named in a file can run code. A checkpoint's own ``allowed_targets`` are ignored, and
interpolations (``${oc.env:HOME}``) are refused. At train time the config is the user's own
(their YAML, their command line): :func:`check_config_target` may import the named module, so a
class from the user's package that subclasses a registered base (composed via
``hydra.searchpath``) trains without editing fusionlab.

Discovery: :func:`options` lists a config group's options (one YAML per option), and
:func:`registered` the classes of one kind, so tests and the README enumerate what exists.
"""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import logging
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from fusionlab.config.schema import ConfigError

log = logging.getLogger("fusionlab")
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered class: its canonical dotted name, kind and, for name-chosen parts, its name."""

    target: str
    kind: str
    obj: Any
    name: str | None = None


_ENTRIES: dict[str, Entry] = {}  # canonical dotted name → entry
_BY_ID: dict[int, Entry] = {}  # id(class) → entry (aliases such as fusionlab.fusions.GatedFusion)
_BY_NAME: dict[tuple[str, str], Entry] = {}  # (kind, name) → entry, for parts chosen by name


def dotted_name(obj: Any) -> str:
    """``module.QualName`` of a class or function."""
    return f"{obj.__module__}.{obj.__qualname__}"


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Class decorator: make ``cls`` instantiable from configs as ``kind`` (``name``: chosen by name)."""

    def deco(obj: T) -> T:
        add(obj, kind, name)
        return obj

    return deco


def add(obj: Any, kind: str, name: str | None = None) -> Entry:
    """Register ``obj`` (a class) as ``kind``; returns its entry."""
    entry = Entry(dotted_name(obj), kind, obj, name)
    _ENTRIES[entry.target] = entry
    _BY_ID[id(obj)] = entry
    if name is not None:
        _BY_NAME[(kind, name)] = entry
    return entry


class Registrable:
    """Mixin for project base classes: every subclass is registered as the base's ``registry_kind``.

    The class whose own body sets ``registry_kind`` is the (abstract) base and is not registered
    itself; every class derived from it is, wherever it is defined::

        class Fusion(Registrable, nn.Module):
            registry_kind = "fusion"
    """

    registry_kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "registry_kind" in cls.__dict__ or not hasattr(cls, "registry_kind"):
            return  # the base itself
        add(cls, cls.registry_kind)


# -- the named library classes ----------------------------------------------------------------------
def _names(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.{n}" for n in names)


LIBRARY: dict[str, tuple[str, ...]] = {
    "optimizer": _names("torch.optim", "SGD", "Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "Adadelta",
                        "RMSprop", "Rprop", "ASGD"),
    "scheduler": _names("torch.optim.lr_scheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                        "CosineAnnealingWarmRestarts", "ReduceLROnPlateau", "OneCycleLR", "CyclicLR", "LinearLR",
                        "ConstantLR", "PolynomialLR"),
    "loss": _names("torch.nn", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
                   "SmoothL1Loss", "HuberLoss", "KLDivLoss"),
    "trainer": ("pytorch_lightning.Trainer",),
    "callback": _names("pytorch_lightning.callbacks", "ModelCheckpoint", "EarlyStopping", "LearningRateMonitor",
                       "StochasticWeightAveraging", "TQDMProgressBar", "RichProgressBar", "ModelSummary",
                       "RichModelSummary", "Timer", "DeviceStatsMonitor"),
    "logger": _names("pytorch_lightning.loggers", "CSVLogger", "TensorBoardLogger", "MLFlowLogger", "WandbLogger"),
    "pruner": _names("optuna.pruners", "MedianPruner", "PercentilePruner", "SuccessiveHalvingPruner",
                     "HyperbandPruner", "ThresholdPruner", "PatientPruner", "NopPruner"),
}
_LIBRARY_KIND = {target: kind for kind, targets in LIBRARY.items() for target in targets}

# What each top-level section of a saved config may build: a checkpoint cannot name a logger (which
# writes files) as its model, or a callback as its data. Sections not listed may build any kind.
SECTION_KINDS: dict[str, frozenset[str]] = {
    "model": frozenset({"net", "branch", "fusion", "embedding", "view", "pooler"}),
    "data": frozenset({"datamodule", "preprocessing"}),
    "optimizer": frozenset({"optimizer"}),
    "scheduler": frozenset({"scheduler"}),
    "init": frozenset({"init"}),
    "augmentation": frozenset({"augmentation"}),
    "callbacks": frozenset({"callback", "pruner"}),
    "logger": frozenset({"logger"}),
    "trainer": frozenset({"trainer"}),
}

HYDRA_FLAGS = {"_partial_": (bool,), "_recursive_": (bool,), "_convert_": ("none", "partial", "object", "all")}
_PLAIN = (str, int, float, bool, type(None))

# the module prefixes that allowed_targets held before it took exact names (now covered by the registry)
_OLD_PREFIXES = frozenset({"fusionlab.", "torch.optim.", "torch.nn.", "torchmetrics.", "pytorch_lightning.",
                           "optuna.pruners."})


# -- loading the project's own classes ---------------------------------------------------------------
_loaded = False


def load_project() -> None:
    """Import every fusionlab module once, so each project class has registered itself (our own
    code: importing it runs nothing a file chose). Modules whose optional extras are missing are
    skipped."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import fusionlab

    for info in pkgutil.walk_packages(fusionlab.__path__, "fusionlab."):
        if info.name.rsplit(".", 1)[-1].startswith("_") or info.name.startswith("fusionlab.conf"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as e:  # e.g. an extra (onnx, transformers) not installed
            log.debug("registry: skipped %s (%s)", info.name, e)


def _loaded_object(target: str) -> Any:
    """The object ``target`` names among modules already imported, or None. Imports nothing and
    runs no attribute hooks (module ``__getattr__``, properties): a static lookup only."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            continue
        obj: Any = module
        for name in parts[i:]:
            obj = inspect.getattr_static(obj, name, None)
            if obj is None:
                return None
        return obj
    return None


def lookup(target: str) -> Entry | None:
    """The entry ``target`` names: a registered class by its canonical name or by an alias in an
    imported package (``fusionlab.fusions.GatedFusion``), or a named library class. Imports nothing
    but fusionlab itself."""
    if not isinstance(target, str) or not target.replace(".", "").replace("_", "").isalnum():
        return None
    load_project()
    if target in _ENTRIES:
        return _ENTRIES[target]
    if target in _LIBRARY_KIND:
        return Entry(target, _LIBRARY_KIND[target], None)
    obj = _loaded_object(target)
    if obj is None:
        return None
    if id(obj) in _BY_ID and _BY_ID[id(obj)].obj is obj:
        return _BY_ID[id(obj)]
    for name, kind in _LIBRARY_KIND.items():  # torch.optim.adamw.AdamW is torch.optim.AdamW
        if _loaded_object(name) is obj:
            return Entry(name, kind, obj)
    return None


_warned: set[str] = set()  # prefixes already warned about (once per process)


def allowed_names(entries: Iterable[Any] | None) -> frozenset[str]:
    """A config's ``allowed_targets`` as exact names. Module prefixes (``mypkg.``) were the old
    format: the old defaults are dropped silently (the registry covers them), others with a warning."""
    names = set()
    for entry in entries or ():
        entry = str(entry)
        if entry.endswith("."):
            if entry not in _OLD_PREFIXES and entry not in _warned:
                _warned.add(entry)
                log.warning("allowed_targets: '%s' is a module prefix, which is no longer honoured; list exact "
                            "class names (e.g. %sMyClass)", entry, entry)
            continue
        names.add(entry)
    return frozenset(names)


def _where(path: str) -> str:
    return f"{path}._target_" if path else "_target_"


# -- train time: the user's own config -------------------------------------------------------------
def check_config_target(target: Any, path: str, allowed: Iterable[str] = ()) -> None:
    """Refuse a ``_target_`` of the user's own config that is neither registered nor listed in
    ``allowed_targets``. The user's own module may be imported here (it is their code): a class
    that subclasses a registered base registers itself on import and is then allowed."""
    where = _where(path)
    if not isinstance(target, str):
        raise ConfigError(where, f"must be a dotted class name, got {target!r}")
    if target in allowed_names(allowed) or lookup(target) is not None:
        return
    from fusionlab.config.schema import locate

    try:
        locate(target)
    except Exception:  # noqa: BLE001 - any failure to import is the user's config naming a missing class
        raise ConfigError(where, f"cannot import '{target}'") from None
    if lookup(target) is None:
        raise ConfigError(where, f"'{target}' is not a registered class: subclass one of fusionlab's bases "
                          f"({', '.join(sorted(BASE_KINDS))}) or add it to allowed_targets")


BASE_KINDS = ("augmentation", "branch", "datamodule", "fusion", "init", "preprocessing", "view")


# -- files that are data: the config saved in a checkpoint ----------------------------------------
def check_saved_config(cfg: Any, extra_allowed: Iterable[str] = (), key: str = "ckpt_path") -> None:
    """Raise :class:`ConfigError` (naming ``key``) unless every ``_target_`` in ``cfg`` (a saved
    config: a dict, list or DictConfig) is registered or in ``extra_allowed`` (the running job's
    ``allowed_targets``; ``cfg``'s own ``allowed_targets`` are ignored), every Hydra flag has a
    plain value, and no value is an interpolation. Works on strings: imports nothing."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    extra = allowed_names(extra_allowed)
    for path, node in _walk(cfg, ""):
        problem = _saved_node_problem(path, node, extra)
        if problem:
            raise ConfigError(key, f"refused: the checkpoint's config {problem}")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _saved_node_problem(path: str, node: Any, extra: frozenset[str]) -> str | None:
    if isinstance(node, Mapping):
        for k in node:
            if not isinstance(k, str):
                return f"has a non-string key {k!r} at {path or 'the top'}"
            if "${" in k:
                return f"has an interpolation in the key {path}.{k} (a saved config holds plain values)"
        for flag, accepted in HYDRA_FLAGS.items():
            if flag in node and not _flag_ok(node[flag], accepted):
                expected = "true or false" if accepted == (bool,) else ", ".join(accepted[:-1]) + f" or {accepted[-1]}"
                return f"has {path}.{flag}={node[flag]!r} (expected {expected})"
        if "_args_" in node and not isinstance(node["_args_"], (list, tuple)):
            return f"has {path}._args_ that is not a list"
        if "_target_" in node:
            return _target_problem(path, node["_target_"], extra)
        return None
    if isinstance(node, str) and ("${" in node or "\\${" in node):
        return f"has an interpolation at {path}: '{node}' (a saved config holds plain values)"
    if not isinstance(node, (*_PLAIN, list, tuple)):
        return f"holds a {type(node).__name__} at {path} (a saved config holds plain values)"
    return None


def _flag_ok(value: Any, accepted: tuple[Any, ...]) -> bool:
    if accepted == (bool,):
        return isinstance(value, bool)
    return isinstance(value, str) and value in accepted


def _target_problem(path: str, target: Any, extra: frozenset[str]) -> str | None:
    where = _where(path)
    if not isinstance(target, str):
        return f"has {where} that is not a dotted name ({type(target).__name__})"
    if target in extra:
        return None
    entry = lookup(target)
    if entry is None:
        return (f"has {where}='{target}', which is not a registered class (a checkpoint is data; "
                f"if you trust this file, add the class to allowed_targets)")
    section = path.split(".", 1)[0].split("[", 1)[0]
    kinds = SECTION_KINDS.get(section)
    if kinds is not None and entry.kind not in kinds:
        return f"has {where}='{target}', a {entry.kind}, where only {'/'.join(sorted(kinds))} may be built"
    return None


# -- discovery ---------------------------------------------------------------------------------------
def registered(kind: str) -> dict[str, Any]:
    """The registered project classes of ``kind`` (``"fusion"``, ``"branch"``, ...) by dotted name."""
    load_project()
    return {t: e.obj for t, e in sorted(_ENTRIES.items()) if e.kind == kind}


def named(kind: str) -> dict[str, Any]:
    """Parts chosen by name (``"pooler"``, ``"view"``): name → class."""
    load_project()
    return {n: e.obj for (k, n), e in sorted(_BY_NAME.items()) if k == kind}


def kinds() -> list[str]:
    """Every kind with at least one registered project class or named library class."""
    load_project()
    return sorted({e.kind for e in _ENTRIES.values()} | set(LIBRARY))


def conf_dir() -> Path:
    """The shipped config folder: ``conf/`` beside the package in a clone, else the installed
    package ``fusionlab.conf``."""
    import fusionlab

    clone = Path(fusionlab.__file__).resolve().parents[1] / "conf"
    return clone if (clone / "train.yaml").is_file() else Path(str(importlib.resources.files("fusionlab.conf")))


def options(group: str, searchpath: Sequence[str | Path] = ()) -> list[str]:
    """The options of config group ``group`` (``fusion``, ``model``, ``data``, ...): one per YAML in
    ``conf/<group>/`` and in each extra config folder of ``searchpath``."""
    found: set[str] = set()
    for root in (conf_dir(), *map(Path, searchpath)):
        folder = root / group
        if folder.is_dir():
            found |= {p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_")}
    return sorted(found)


def groups() -> list[str]:
    """The config groups of the shipped config folder."""
    return sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))


def option_target(group: str, option: str, searchpath: Sequence[str | Path] = ()) -> str | None:
    """The ``_target_`` an option's YAML builds (the outermost one; for a scheduler option, its
    ``scheduler``), read from the file without composing it, or None. A variant of another option
    of its group (``defaults: [cnn, _self_]``, as ``branch/fcn``) builds its base's target."""
    import yaml

    for root in (*map(Path, searchpath), conf_dir()):
        path = root / group / f"{option}.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            for _, node in _walk(data, ""):
                if isinstance(node, Mapping) and isinstance(node.get("_target_"), str):
                    return node["_target_"]
            bases = [d for d in data.get("defaults", ()) if isinstance(d, str) and d != "_self_" and "/" not in d]
            return next((t for t in (option_target(group, b, searchpath) for b in bases) if t), None)
    return None
