"""Statistics: pure numerics without I/O (lifetime-value models, tests, power, attribution)."""
