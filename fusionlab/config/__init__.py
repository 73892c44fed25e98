"""Config schemas, validation and the ConfigStore registration."""

from fusionlab.config.schema import ConfigError, PositiveInt, Probability, validate_targets
from fusionlab.config.store import register_configs

__all__ = ["ConfigError", "PositiveInt", "Probability", "register_configs", "validate_targets"]
