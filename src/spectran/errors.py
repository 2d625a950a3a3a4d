"""User-facing errors: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations


class SpectranError(Exception):
    """An error caused by the user's input or environment, reported as a single line.

    The CLI prints ``error: <message>`` and exits with code 2. Messages name the file, the row
    (where there is one) and what was expected.
    """


class ConfigError(SpectranError):
    """An unknown setting, a wrong type, or an unknown component name."""


class DataError(SpectranError):
    """A malformed dataset file, an id out of range, a missing data folder."""


class CacheError(SpectranError):
    """A cache or checkpoint that is truncated, corrupt or does not match the data."""
