"""``--help`` for ``train.py``/``eval.py`` in about the time one composition takes.

Hydra's own ``--help`` lists the options of every config group through its config loader, which
copies the whole ConfigStore once per group (about 150 copies here: 10–25 s on a busy 2-core machine).
This prints the same page (groups with their options, then the composed config) with the groups
read from the config folders (the primary one and ``hydra.searchpath``) and the config composed
once with Hydra's public Compose API. ``--hydra-help`` is still Hydra's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HELP_FLAGS = ("--help", "-h")


SIMPLE_FLAGS = (*HELP_FLAGS, "-m", "--multirun", "--resolve")


def wants_help(argv: list[str]) -> bool:
    """``--help``/``-h`` with nothing but overrides and simple flags (``--config-name``, ``--config-dir``
    and the like are left to Hydra's own help)."""
    return any(a in HELP_FLAGS for a in argv) and all(a in SIMPLE_FLAGS or not a.startswith("-") for a in argv)


def _folder(path: str) -> Any:
    """A searchpath entry (``pkg://module``, ``file://dir``, or a plain folder) as a traversable folder."""
    import importlib.resources

    if path.startswith("pkg://"):
        try:
            return importlib.resources.files(path.removeprefix("pkg://").replace("/", "."))
        except ModuleNotFoundError:
            return None
    return Path(path.removeprefix("file://"))


def group_options(folders: list[Any]) -> dict[str, list[str]]:
    """``{group: sorted options}`` of the YAML files below each folder (``hydra/...`` groups left out)."""
    found: dict[str, set[str]] = {}

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                walk(entry, f"{prefix}{entry.name}/")
            elif prefix and entry.name.endswith((".yaml", ".yml")):
                found.setdefault(prefix.rstrip("/"), set()).add(entry.name.rsplit(".", 1)[0])

    for folder in folders:
        if folder is not None and folder.is_dir():
            walk(folder, "")
    return {g: sorted(o) for g, o in sorted(found.items()) if g != "hydra" and not g.startswith("hydra/")}


def help_text(config_path: str, config_name: str, overrides: list[str]) -> str:
    """The help page: config groups and options, then the config composed with ``overrides``."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    GlobalHydra.instance().clear()
    if config_path.startswith("pkg://"):
        init: Any = initialize_config_module(config_path.removeprefix("pkg://"), version_base="1.3")
        primary = _folder(config_path)
    else:
        primary = Path(sys.argv[0]).resolve().parent / config_path
        init = initialize_config_dir(str(primary), version_base="1.3")
    with init:
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    searchpath = [_folder(p) for p in cfg.hydra.get("searchpath", [])]
    app = Path(sys.argv[0]).stem
    with open_dict(cfg):
        del cfg["hydra"]
    groups = group_options([primary, *searchpath])
    lines = [f"{app} is powered by Hydra.", "", "== Configuration groups ==",
             "Compose your configuration from those groups (group=option)", ""]
    lines += [f"{group}: {', '.join(options)}" for group, options in groups.items()]
    lines += ["", "", "== Config ==", "Override anything in the config (foo.bar=value)", "",
              OmegaConf.to_yaml(cfg).rstrip(), "", "",
              "Powered by Hydra (https://hydra.cc)", "Use --hydra-help to view Hydra specific help", "", ""]
    return "\n".join(lines)


def print_help(config_path: str, config_name: str, argv: list[str]) -> None:
    """Print :func:`help_text` for the overrides in ``argv`` (flags dropped)."""
    overrides = [a for a in argv if not a.startswith("-")]
    print(help_text(config_path, config_name, overrides))
