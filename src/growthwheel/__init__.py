"""Growthwheel: self-hosted growth operations for e-commerce teams."""

__version__ = "0.1.0"
