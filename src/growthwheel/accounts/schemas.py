"""Pydantic shapes of the accounts domain: the authenticated ``Principal`` and API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["admin", "operator", "analyst"]
Scope = Literal["ingest", "read", "write"]

SCOPES: frozenset[str] = frozenset({"ingest", "read", "write"})
"""Every scope an API key can carry."""

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": SCOPES,
    "operator": frozenset({"ingest", "read", "write"}),
    "analyst": frozenset({"read"}),
}
"""What each console role may do through the API."""


class Principal(BaseModel):
    """Who is making a request: a logged-in user (session cookie) or a machine (API key)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["user", "api_key"]
    id: str
    name: str
    """The user's e-mail or the key's name."""
    role: Role | None = None
    """The user's role; ``None`` for API keys."""
    scopes: frozenset[str]
    """Users: every scope their role allows; keys: their own scopes."""
    ip: str | None = None
    """The client's address, written to the audit log with every change it makes."""

    @property
    def can_see_pii(self) -> bool:
        """Whether phone numbers and e-mail addresses may be shown unmasked (not to analysts)."""
        if self.kind == "user":
            return self.role != "analyst"
        return "read" in self.scopes


class UserOut(BaseModel):
    """A console user as listed (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class ApiKeyOut(BaseModel):
    """An API key as listed: its display prefix, never the key."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked: bool

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return sorted(value.split()) if isinstance(value, str) else value


class MeOut(BaseModel):
    """``GET /api/v1/me``: who the server thinks is calling and what they may do."""

    kind: Literal["user", "api_key"]
    id: str
    name: str
    role: Role | None = Field(default=None, description="Null for API keys.")
    scopes: list[str] = Field(description="Sorted.")
    can_see_pii: bool = Field(description="False when phones and e-mails are shown masked.")
