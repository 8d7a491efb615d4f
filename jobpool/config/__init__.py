"""jobpool's configuration: TOML and environment variables, validated once into frozen
dataclasses (model), by the loader (load) with its schema, reader, URL and unit helpers."""

from jobpool.config.load import config_from_dict, default_config, load_config
from jobpool.config.model import (
    Config,
    ConfigError,
    DashboardConfig,
    JobsConfig,
    MetricsConfig,
    PoolConfig,
    QueueConfig,
    RedisConfig,
)

__all__ = [
    "Config",
    "ConfigError",
    "DashboardConfig",
    "JobsConfig",
    "MetricsConfig",
    "PoolConfig",
    "QueueConfig",
    "RedisConfig",
    "config_from_dict",
    "default_config",
    "load_config",
]
