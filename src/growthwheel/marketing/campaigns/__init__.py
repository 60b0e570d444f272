"""Campaigns with phases (蓄水 → 爆发 → 余热): goals, budgets, attachments, pacing, review (issue 14)."""
