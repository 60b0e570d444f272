"""Acting facts flow back: what the shop does through Growthwheel becomes warehouse facts."""
