"""Insight: pure analytics over the warehouse's Ibis tables (metrics, funnels, cohorts, ...)."""
