"""Customers: search and profiles over the warehouse (attributes, KPIs, order and event timelines)."""
