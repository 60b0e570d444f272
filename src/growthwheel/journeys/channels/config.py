"""Which channels a shop has and the rules they follow: ``<data_dir>/channels.json``.

Example (every section optional; a channel that is not configured is not built)::

    {
      "public_url": "https://shop-growth.example.com",
      "require_opt_in": {"email": true, "sms": true},
      "email": {"host": "smtp.example.com", "port": 587, "security": "starttls",
                "sender": "Tea Shop <news@example.com>", "username": "news", "password": "…"},
      "webhook": {"url": "https://push.example.com/hook", "secret": "at least 16 characters"},
      "wecom": {"robot_key": "…"}  or  {"corp_id": "…", "corp_secret": "…", "agent_id": 1000002},
      "sms": {"provider": "aliyun", "access_key_id": "…", "access_key_secret": "…", "sign_name": "茶小铺"},
      "rules": {"caps": [{"channel": "*", "limit": 3, "window_hours": 168},
                         {"channel": "email", "limit": 1, "window_hours": 24}],
                "quiet_hours": {"*": {"start": "21:00", "end": "09:00", "mode": "defer"}},
                "daily_caps": {"sms": 5000}},
      "status_secret": "at least 16 characters: signs providers' delivery / bounce callbacks"
    }

The file holds secrets: keep it as private as ``secret.key`` (the data directory is the server's).
Without a file no channel is configured and no rule applies.
"""

from __future__ import annotations

import json
from datetime import time, timedelta
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from growthwheel.config import Settings
from growthwheel.errors import ConfigError
from growthwheel.journeys.channels.rules import FrequencyCap, QuietHours, Rules

CHANNELS_FILE = "channels.json"


class SmtpConfig(BaseModel):
    """An SMTP server."""

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = Field(default=30.0, gt=0)


class WebhookConfig(BaseModel):
    """A signed webhook endpoint (``kind``: which channel it serves)."""

    url: str
    secret: str = Field(min_length=16)
    kind: Literal["webhook", "sms", "wecom"] = "webhook"


class WeComConfig(BaseModel):
    """企业微信: a group robot (``robot_key``) or an app (``corp_id``, ``corp_secret``, ``agent_id``)."""

    robot_key: str | None = None
    corp_id: str | None = None
    corp_secret: str | None = None
    agent_id: int | None = None
    base_url: str = "https://qyapi.weixin.qq.com"


class SmsConfig(BaseModel):
    """An SMS provider (Aliyun today)."""

    provider: Literal["aliyun"] = "aliyun"
    access_key_id: str
    access_key_secret: str
    sign_name: str
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"


class CapConfig(BaseModel):
    """A frequency cap."""

    channel: str = "*"
    limit: int = Field(ge=1)
    window_hours: float = Field(gt=0)


class QuietConfig(BaseModel):
    """Quiet hours as ``HH:MM`` local times."""

    start: time
    end: time
    mode: Literal["defer", "drop"] = "defer"


class RulesConfig(BaseModel):
    """Caps, quiet hours and daily caps."""

    caps: list[CapConfig] = []
    quiet_hours: dict[str, QuietConfig] = {}
    daily_caps: dict[str, int] = {}
    cap_mode: Literal["defer", "drop"] = "drop"
    daily_cap_mode: Literal["defer", "drop"] = "defer"

    @field_validator("daily_caps")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        if any(limit < 0 for limit in value.values()):
            raise ValueError("daily caps must not be negative")
        return value

    def to_rules(self, timezone: str) -> Rules:
        """The pure :class:`Rules` in the shop's ``timezone``."""
        return Rules(
            timezone=timezone,
            caps=tuple(FrequencyCap(c.channel, c.limit, timedelta(hours=c.window_hours)) for c in self.caps),
            quiet_hours={ch: QuietHours(q.start, q.end, q.mode) for ch, q in self.quiet_hours.items()},
            daily_caps=dict(self.daily_caps), cap_mode=self.cap_mode, daily_cap_mode=self.daily_cap_mode)


class ChannelsConfig(BaseModel):
    """Everything in ``channels.json``."""

    public_url: str = "http://127.0.0.1:8000"
    require_opt_in: dict[str, bool] = {}
    email: SmtpConfig | None = None
    webhook: WebhookConfig | None = None
    wecom: WeComConfig | None = None
    sms: SmsConfig | None = None
    rules: RulesConfig = RulesConfig()
    status_secret: str | None = Field(default=None, min_length=16)
    """Signs providers' delivery / bounce callbacks to ``POST /m/status`` (none: callbacks off)."""


def load(cfg: Settings) -> ChannelsConfig:
    """``channels.json`` of the data directory (an empty configuration when there is none)."""
    path = cfg.data_dir / CHANNELS_FILE
    if not path.exists():
        return ChannelsConfig()
    try:
        return ChannelsConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"{path}: {where}: {first.get('msg', 'invalid')}") from exc
