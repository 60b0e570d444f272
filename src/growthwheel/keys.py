"""Catalogue keys marked in Python code.

The words a person reads live in the console's catalogues (``web/i18n/<lang>/<domain>.json``);
code below the web layer (the warehouse's import errors, domain errors) names them by key and the
face that shows them (console, API, CLI) translates them. :func:`k` marks such a key so that a test
can check that both catalogues hold every key in use; it lives here, at the bottom of the package,
so that marking a key does not pull the web layer into the warehouse.
"""

from __future__ import annotations


def k(key: str) -> str:
    """Mark ``key`` as a catalogue key used from Python code (returns it unchanged)."""
    return key
