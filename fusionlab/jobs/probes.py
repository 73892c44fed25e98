"""Validation probes: call a ``_partial_`` factory once on stand-in arguments, so a bad value
(``optimizer.lr=-1``) is reported before training, naming its key, instead of from inside
``trainer.fit``; and the parsing of library error text that finds which argument was bad."""

from __future__ import annotations

from typing import Any

from fusionlab.config.schema import ConfigError

# what torch's optimizers accept, for the error message (they state only the bad value)
TORCH_RULES = {"lr": ">= 0", "eps": ">= 0", "weight_decay": ">= 0", "momentum": ">= 0", "alpha": ">= 0",
               "betas": "each in [0, 1)", "dampening": "any number", "rho": "in [0, 1]"}
# words torch's messages use for an argument ("Invalid learning rate" is about lr)
ALIASES = {"lr": ("learning rate",), "eps": ("epsilon",), "betas": ("beta",)}


def probe(factory: Any, key: str, *args: Any) -> Any:
    """``factory(*args)``; a ValueError/TypeError becomes a :class:`ConfigError` naming ``key`` (and
    the argument the message is about, when it can be told)."""
    try:
        return factory(*args)
    except (ValueError, TypeError) as e:
        message = str(e).splitlines()[0]
        name = argument_named_in(message, getattr(factory, "keywords", {}))
        if name is None:
            raise ConfigError(key, message) from None
        rule = TORCH_RULES.get(name)
        raise ConfigError(f"{key}.{name}", f"{message}" + (f" (allowed: {rule})" if rule else "")) from None


def argument_named_in(message: str, keywords: dict[str, Any]) -> str | None:
    """The keyword argument a constructor's error message is about (``Invalid learning rate`` → lr)."""
    text = message.lower()
    for name in keywords:
        if any(word in text for word in (name.lower(), *ALIASES.get(name, ()))):
            return name
    return None
