"""Instantiate config nodes, reporting constructor errors as :class:`ConfigError` naming the key."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from fusionlab.config.schema import ConfigError


def build(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``; a ConfigError from the constructor is placed
    under ``key``, and a ValueError/TypeError becomes one naming ``key``."""
    try:
        return instantiate(node, **kwargs)
    except ConfigError as e:
        raise e.under(key) from None
    except Exception as e:  # Hydra wraps constructor errors in InstantiationException
        cause = e.__cause__ or e
        if isinstance(cause, ConfigError):
            raise cause.under(key) from None
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigError(key, str(cause).splitlines()[0]) from None
        raise
