"""One line for a config Hydra cannot compose, with the close matches a typo was meant to be.

This is the one place fusionlab relies on how Hydra reports errors (pinned by ``tests/test_cli_errors.py``):

- with the documented ``HYDRA_FULL_ERROR=1``, the function ``hydra.main`` returns re-raises the
  exception instead of printing it and exiting 1, so :func:`run_with_one_line_errors` can catch
  ``ConfigCompositionException`` / ``OverrideParseException`` / ``MissingConfigException`` around it;
- an unknown option is a ``MissingConfigException`` carrying ``missing_cfg_file`` and ``options``;
- an unknown key is a ``ConfigCompositionException`` caused by an OmegaConf error carrying
  ``full_key``, ``key`` and ``parent_node``;

Only Hydra and OmegaConf are imported here (no torch): ``--help`` and Tab completion stay fast.
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EXIT_CONFIG = 2  # invalid config: nothing ran
USER_FULL_ERROR = "FUSIONLAB_FULL_ERROR"  # the user's own HYDRA_FULL_ERROR, kept while fusionlab sets it to 1


def full_error() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", "0")) == "1"


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``candidates`` that ``word`` was probably meant to be (difflib ratio ≥ 0.6)."""
    pool = sorted({str(c) for c in candidates if not str(c).startswith("_")})
    found = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    if not found:  # a different case or a prefix: "GunPont" → "GunPoint", "gate" → "gated"
        found = [c for c in pool if c.lower() == word.lower() or c.lower().startswith(word.lower())][:n]
    return found


def did_you_mean(word: str, candidates: Iterable[str], render: Callable[[str], str] = repr) -> str:
    """``"; did you mean 'gated'?"`` (or ``""`` when nothing is close)."""
    found = close_matches(word, candidates)
    if not found:
        return ""
    return f"; did you mean {' or '.join(render(f) for f in found)}?"


def config_groups(config_path: str | None) -> list[str]:
    """The top-level config groups (e.g. ``fusion``, ``model``) of a ``hydra.main`` ``config_path``
    (a folder next to the script, or ``pkg://module``), plus those in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    groups = {name for name in ConfigStore.instance().list("") if not name.endswith(".yaml")}
    folder: Any = None
    if config_path and config_path.startswith("pkg://"):
        import importlib.resources

        try:
            folder = importlib.resources.files(config_path.removeprefix("pkg://"))
        except ModuleNotFoundError:
            folder = None
    elif config_path:
        folder = Path(sys.argv[0]).resolve().parent / config_path
    if folder is not None and folder.is_dir():
        groups |= {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    return sorted(groups - {"hydra"})


def composition_message(error: Exception, groups: Iterable[str] = ()) -> str:
    """One line for a config Hydra could not compose: the key, the value, what is allowed, close matches
    (among the keys of the node, or for a top-level name, also among the config ``groups``)."""
    import dataclasses

    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf import DictConfig
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, MissingConfigException):
        first = lines[0].split(": ", 1)[-1] if lines else "missing config"
        options = list(error.options or [])
        missing = getattr(error, "missing_cfg_file", None) or ""
        hint = did_you_mean(missing.rsplit("/", 1)[-1], options) if missing else ""
        text = first + hint
        return f"{text}; available options: {', '.join(options)}" if options else text
    if isinstance(error, OverrideParseException):
        return f"cannot parse override '{error.override}': {_first_line(error.message)}"
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        value = next((line.rsplit("=", 1)[1] for line in lines if "=" in line and "override" in line.lower()), None)
        problem = (getattr(cause, "msg", None) or str(cause)).splitlines()[0]
        text = f"{cause.full_key}: {problem}" + (f" (got {value})" if value is not None else "")
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            key = str(getattr(cause, "key", None) or cause.full_key.rsplit(".", 1)[-1])
            parent = getattr(cause, "parent_node", None)
            known = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
            kind = getattr(cause, "object_type", None)
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                known = [f.name for f in dataclasses.fields(kind)]
            prefix = cause.full_key[: -len(key)] if cause.full_key.endswith(key) else ""
            hint = did_you_mean(key, known, render=lambda k: repr(prefix + k))
            if not prefix:  # a top-level name may be a misspelt config group: fusoin=gated → fusion=gated
                group_hint = did_you_mean(key, groups, render=lambda g: f"the config group {g!r}")
                hint = hint or group_hint
            text += hint
            if kind is not None and isinstance(kind, type) and dataclasses.is_dataclass(kind):
                text += f"; expected one of {sorted(known)}"
            elif "+" in str(error):
                text += "; check the spelling (adding a new key needs a leading +, e.g. +key=value)"
        return text
    return "; ".join(lines[:2])


def swept_group_hint(error: Exception, groups: Iterable[str], argv: list[str]) -> str:
    """In a multirun, Hydra composes the primary config without the swept overrides: a key that only a
    swept group adds (``-m experiment=a,b data.name=X``, the experiments choosing ``data: ucr``) is unknown
    there. Name the swept groups and how to state the key's own group."""
    if not {"-m", "--multirun"} & set(argv):
        return ""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = error.__cause__
    full_key = str(getattr(cause, "full_key", "") or "")
    if not isinstance(cause, (ConfigKeyError, ConfigAttributeError)) or not full_key:
        return ""
    known = set(groups)
    swept = [a.split("=", 1)[0] for a in argv if "=" in a and "," in a.split("=", 1)[1]
             and a.split("=", 1)[0].lstrip("+~") in known]
    if not swept:
        return ""
    group = full_key.split(".", 1)[0]
    fix = f"choose {group}=<option> on the command line too" if group in known else "add it with a leading +"
    return (f" (in a multirun the swept group(s) {', '.join(swept)} are applied per job, after this check: "
            f"{fix})")


def config_error_message(error: Exception) -> str:
    """A :class:`~fusionlab.config.ConfigError`'s text, plus close matches for an unknown key whose
    message lists the expected ones (``unknown key for GatedFusion; expected one of [...]``)."""
    import ast

    text = str(error)
    key, message = str(getattr(error, "key", "")), str(getattr(error, "message", ""))
    marker = "expected one of "
    if "unknown key" in message and marker in message and "did you mean" not in message:
        try:
            expected = ast.literal_eval(message.rsplit(marker, 1)[1].strip())
        except (SyntaxError, ValueError):
            return text
        if isinstance(expected, (list, tuple)):
            name = key.rsplit(".", 1)[-1]
            prefix = key[: -len(name)]
            text += did_you_mean(name, map(str, expected), render=lambda k: repr(prefix + k))
    return text


def _first_line(text: Any) -> str:
    text = str(text).strip()
    return text.splitlines()[0] if text else ""


def _print_trimmed_traceback(error: BaseException) -> None:
    """Hydra's own way: the traceback without Hydra's frames on top, plus how to see all of it."""
    tb = error.__traceback__
    while tb is not None and f"{os.sep}hydra{os.sep}" in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb if tb is not None else error.__traceback__)
    print("\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", file=sys.stderr)


def run_with_one_line_errors(main: Callable[[], Any], config_path: str | None = None) -> Any:
    """Run ``main`` (a function made by ``hydra.main``) so that a config Hydra cannot compose ends with
    one line on stderr and exit status 2; other errors keep Hydra's trimmed traceback and exit 1.
    ``HYDRA_FULL_ERROR=1`` shows every traceback in full."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    os.environ.setdefault(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", "0"))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then re-raises instead of printing and exiting
    try:
        return main()
    except (ConfigCompositionException, OverrideParseException, MissingConfigException) as e:
        if full_error():
            raise
        groups = config_groups(config_path)
        print(f"Error in config: {composition_message(e, groups)}{swept_group_hint(e, groups, sys.argv[1:])}",
              file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except Exception as e:
        if full_error():
            raise
        _print_trimmed_traceback(e)
        sys.exit(1)
