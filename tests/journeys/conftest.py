"""Fixtures of the journeys tests: real SMTP and HTTP servers on 127.0.0.1 (``channel_servers.py``)."""

from channel_servers import receiver, smtp_server

__all__ = ["receiver", "smtp_server"]
