"""Accounts: console users and their roles, login sessions, API keys for machines, the audit log.

``service`` holds the logic (password hashing, login throttling, sessions, keys, ``audit``),
``api`` the login / logout form posts and ``GET /api/v1/me``, ``cli`` the ``users`` and
``apikeys`` commands; the request-time dependencies live in ``growthwheel.api.deps``.
"""
