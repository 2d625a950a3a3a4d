"""User-facing errors: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations


class SpectranError(Exception):
    """An error caused by the user's input or environment, reported as a single line.

    The CLI prints ``error: <message>`` and exits with code 2. Messages name the file, the row
    (where there is one) and what was expected.
    """


class ConfigError(SpectranError):
    """An unknown setting, a wrong type or range, or an unknown component name.

    ``setting`` is the dotted name of the setting at fault (``train.lr``) when there is one, so
    that the caller can name where its value came from (a config file, a flag, ``--set``).
    """

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class DataError(SpectranError):
    """A malformed dataset file, an id out of range, a missing data folder."""


class CacheError(SpectranError):
    """A cache or checkpoint that is truncated, corrupt or does not match the data."""


def expect(ok: bool, setting: str, expected: str, value: object) -> None:
    """Raise ``ConfigError('<setting>: expected <expected>, got <value>')`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{setting}: expected {expected}, got {value!r}", setting=setting)
