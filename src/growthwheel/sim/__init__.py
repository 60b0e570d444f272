"""Demo-shop simulator with known ground truth.

``build_demo_files(out_dir, customers=..., days=..., seed=...)`` writes one generic import file per
fact table plus ``ground_truth.json``; ``simulate(...)`` returns the same tables in memory.
"""

from growthwheel.sim.shop import DemoFiles, DemoShop, build_demo_files, simulate

__all__ = ["DemoFiles", "DemoShop", "build_demo_files", "simulate"]
