"""Products: the product matrix (traffic drivers, profit makers, potential products, slow movers,
long tail) per period."""
