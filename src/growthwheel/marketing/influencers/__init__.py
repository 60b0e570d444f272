"""Influencers (KOL / KOC): the registry, follower tiers and what each one brought (issue 14)."""
