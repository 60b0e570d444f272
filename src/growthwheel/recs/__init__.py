"""Recommendations: co-purchase rules and bundles, personalised recommenders, offline evaluation,
precomputed serving (issue 15, items 1–3)."""
