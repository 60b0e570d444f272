"""Message channels behind one interface (``base.Channel``), one adapter per provider.

- ``smtp``: email over SMTP (HTML + text, RFC 8058 one-click unsubscribe headers);
- ``webhook``: signed JSON webhooks (HMAC-SHA256 over ``timestamp.body``, replay window);
- ``wecom``: 企业微信 group robot and app messages;
- ``sms_aliyun``: Aliyun (阿里云) SMS ``SendSms`` with its RPC signature;
- ``templates``: zh/en message templates in Jinja2's sandbox;
- ``links``: signed unsubscribe and click-redirect tokens, UTM tags;
- ``rules``: pure frequency-cap, quiet-hours and daily-cap decisions;
- ``store``: consent, suppression, the send log that enforces the caps in the database, clicks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from growthwheel.config import Settings
    from growthwheel.journeys.channels.guard import GuardedChannel


def build_channels(cfg: Settings) -> dict[str, GuardedChannel]:
    """The configured channels of ``cfg``'s data directory (``channels.json``), keyed by kind
    (``email``, ``sms``, ``wecom``, ``webhook``), each behind consent, suppression and the rules.

    The worker's outbox finds this function (``jobs.outbox.configured_channels``).
    """
    from growthwheel.journeys.channels import config as channels_config
    from growthwheel.journeys.channels.base import Channel
    from growthwheel.journeys.channels.guard import GuardedChannel
    from growthwheel.journeys.channels.sms_aliyun import AliyunSmsChannel
    from growthwheel.journeys.channels.smtp import SmtpChannel
    from growthwheel.journeys.channels.webhook import WebhookChannel
    from growthwheel.journeys.channels.wecom import WeComAppChannel, WeComRobotChannel

    conf = channels_config.load(cfg)
    rules = conf.rules.to_rules(cfg.shop().timezone)
    built: dict[str, tuple[Channel, bool]] = {}
    if conf.email:
        e = conf.email
        built["email"] = (SmtpChannel(e.host, e.port, e.sender, security=e.security, username=e.username,
                                      password=e.password, timeout=e.timeout), False)
    if conf.webhook:
        w = conf.webhook
        built[w.kind] = (WebhookChannel(w.url, w.secret.encode("utf-8"), kind=w.kind), True)
    if conf.wecom and "wecom" not in built:
        q = conf.wecom
        if q.robot_key:
            built["wecom"] = (WeComRobotChannel(q.robot_key, base_url=q.base_url), False)
        elif q.corp_id and q.corp_secret and q.agent_id is not None:
            app = WeComAppChannel(q.corp_id, q.corp_secret, q.agent_id, base_url=q.base_url)
            built["wecom"] = (app, True)
    if conf.sms and "sms" not in built:
        s = conf.sms
        built["sms"] = (AliyunSmsChannel(s.access_key_id, s.access_key_secret, s.sign_name,
                                         endpoint=s.endpoint, region_id=s.region_id), False)
    return {kind: GuardedChannel(cfg, adapter, rules, require_opt_in=conf.require_opt_in.get(kind, False),
                                 idempotent=idempotent)
            for kind, (adapter, idempotent) in built.items()}
