"""Journeys: automated touches (welcome, win-back, birthday, replenishment, abandoned cart).

Today this package holds the message channels (``channels/``) and the public, signed routes for
unsubscribing and link clicks (``api.py``); triggers, steps and enrolments come later.
"""
