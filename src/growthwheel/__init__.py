"""Growthwheel: self-hosted growth operations for e-commerce teams.

``growthwheel.open(data_dir)`` gives an analyst the shop's figures as DataFrames
(:mod:`growthwheel.analyst`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from growthwheel import analyst

__version__ = "0.1.0"


def open(data_dir: str | os.PathLike[str] | None = None) -> analyst.Shop:
    """The shop in ``data_dir`` as DataFrames, for notebooks: see :mod:`growthwheel.analyst`."""
    from growthwheel.analyst import open_shop

    return open_shop(data_dir)
