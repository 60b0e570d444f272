"""``python -m growthwheel.cli``."""

from growthwheel.cli.main import main

main()
