"""Error types shared by every layer of mlplab.

The CLI turns `ConfigError` and `DataError` into exit status 2 with their message as one
line on stderr, so their messages must name the key or file and what would be valid.
"""


class MlplabError(Exception):
    """Base class of mlplab's own errors."""


class ConfigError(MlplabError, ValueError):
    """A value the user typed (config key, override, constructor argument) is invalid."""


class DataError(MlplabError):
    """A data file is missing, corrupt, or has the wrong shape or content."""


def choices(valid) -> str:
    """Format valid choices the same way everywhere: sorted, comma separated."""
    return ", ".join(sorted(str(v) for v in valid))
