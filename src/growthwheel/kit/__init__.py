"""Plumbing shared by every domain: money, time."""
