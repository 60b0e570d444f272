"""One error hierarchy for the whole product.

Every error a user can cause carries a stable machine ``code`` and an HTTP ``status``; the CLI
prints ``message`` on one line and exits non-zero, the API (later) turns it into problem+json.
"""

from __future__ import annotations


class GrowthwheelError(Exception):
    """Base class: an error with a stable code, an HTTP status and a one-line message."""

    code = "growthwheel_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GrowthwheelError):
    """The configuration or the data directory is not usable."""

    code = "config_error"
    status = 500


class ImportFileError(GrowthwheelError):
    """A whole input file cannot be imported (unreadable, wrong format, missing columns)."""

    code = "import_file_error"
    status = 422


class NoDataError(GrowthwheelError):
    """A computation was asked for over data that is not there (empty warehouse, empty range)."""

    code = "no_data"
    status = 404


class InvalidArgumentError(GrowthwheelError):
    """An argument given by the user is out of range or malformed."""

    code = "invalid_argument"
    status = 422
