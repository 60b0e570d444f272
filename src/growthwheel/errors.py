"""One error hierarchy for the whole product.

Every error a user can cause carries a stable machine ``code`` and an HTTP ``status``; the CLI
prints ``message`` on one line and exits non-zero, the API turns it into problem+json.

An error made with :meth:`GrowthwheelError.coded` also carries a catalogue ``key`` (its words in
``web/i18n/<lang>/*.json``), the ``field`` it is about and the values to fill in: its ``message`` is
the English text (``field: text``), and :meth:`GrowthwheelError.text` gives it in any language,
so the API answers in the client's ``Accept-Language`` and the console in the page's language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self


class GrowthwheelError(Exception):
    """Base class: an error with a stable code, an HTTP status and a one-line message."""

    code = "growthwheel_error"
    status = 500

    #: Catalogue key of the words (``None``: ``message`` is all there is), the field the error is
    #: about and the values of the key's placeholders.
    key: str | None = None
    field: str | None = None
    params: dict[str, Any]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.params = {}

    @classmethod
    def coded(cls, key: str, *, field: str | None = None, **params: Any) -> Self:
        """The error whose words are the catalogue's ``key`` (with ``params`` filled in) about
        ``field``; its ``message`` is the English text, prefixed by ``field: ``."""
        from growthwheel.web.i18n import translator  # the catalogues, no web machinery

        error = cls(_join(field, translator("en")(key, **params)))
        error.key, error.field, error.params = key, field, dict(params)
        return error

    def text(self, t: Callable[..., str]) -> str:
        """The message in the language of the translator ``t`` (``t(key, **values)``)."""
        if self.key is None:
            return self.message
        return _join(self.field, t(self.key, **self.params))


def _join(field: str | None, text: str) -> str:
    return f"{field}: {text}" if field else text


class ConfigError(GrowthwheelError):
    """The configuration or the data directory is not usable."""

    code = "config_error"
    status = 500


class ImportFileError(GrowthwheelError):
    """A whole input file cannot be imported (unreadable, wrong format, missing columns)."""

    code = "import_file_error"
    status = 422


class MissingColumnsError(ImportFileError):
    """An input file lacks columns its table requires; ``file`` names it (as the import was given
    it) and ``values`` holds ``missing`` and ``found`` for a message in the reader's language."""

    code = "missing_columns"
    key = "imports.error.missing_columns"

    def __init__(self, message: str, file: str, missing: Sequence[str], found: Sequence[str]) -> None:
        super().__init__(message)
        self.file = file
        self.values = {"missing": ", ".join(missing), "found": ", ".join(found) or "–"}
        self.params = {"file": file.replace("\\", "/").rsplit("/", 1)[-1], **self.values}


class NoDataError(GrowthwheelError):
    """A computation was asked for over data that is not there (empty warehouse, empty range)."""

    code = "no_data"
    status = 404


class InvalidArgumentError(GrowthwheelError):
    """An argument given by the user is out of range or malformed."""

    code = "invalid_argument"
    status = 422
