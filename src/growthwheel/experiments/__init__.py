"""Experiments: A/B tests and hold-outs with deterministic assignment, exposures recorded as events,
warehouse metrics aggregated into sufficient statistics, and results from ``growthwheel.stats``."""
