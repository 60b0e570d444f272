"""Each adapter against a real local server: aiosmtpd for SMTP, an HTTP receiver for the rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from channel_servers import Mailbox, Received, Receiver, free_port

from growthwheel.journeys.channels import sms_aliyun, webhook
from growthwheel.journeys.channels.base import (
    Message,
    PermanentChannelError,
    RetryableChannelError,
    key_digest,
)
from growthwheel.journeys.channels.links import unsubscribe_headers
from growthwheel.journeys.channels.sms_aliyun import AliyunSmsChannel
from growthwheel.journeys.channels.smtp import KEY_HEADER, SmtpChannel
from growthwheel.journeys.channels.webhook import WebhookChannel, WebhookSignatureError
from growthwheel.journeys.channels.wecom import WeComAppChannel, WeComRobotChannel


def email(to: str = "li.na@example.com", **extra: object) -> Message:
    fields: dict[str, object] = {
        "channel": "email", "customer_id": "c1", "to": to, "subject": "好久不见，送您一张回归券",
        "text": "您好 李娜：券码 WB-1234", "html": "<p>您好 <b>李娜</b>：券码 WB-1234</p>",
        "headers": unsubscribe_headers("https://shop.example.com/m/u/tok"),
    }
    fields.update(extra)
    return Message(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# SMTP
# ---------------------------------------------------------------------------------------------


def test_smtp_sends_text_and_html_with_one_click_unsubscribe_headers(
    smtp_server: tuple[int, Mailbox],
) -> None:
    port, mailbox = smtp_server
    channel = SmtpChannel("127.0.0.1", port, "茶小铺 <news@tea.example.com>")
    try:
        first = channel.send(email(), "j|winback|s1|c1|2025-03")
        channel.send(email(to="wang@example.com"), "j|winback|s1|c2|2025-03")  # same connection
    finally:
        channel.close()
    assert len(mailbox.messages) == 2
    got = mailbox.messages[0]
    assert got["Subject"] == "好久不见，送您一张回归券"
    assert got["List-Unsubscribe"] == "<https://shop.example.com/m/u/tok>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["Message-ID"] == f"<{key_digest('j|winback|s1|c1|2025-03')}@tea.example.com>"
    assert first.provider_id == got["Message-ID"]
    assert got[KEY_HEADER] == "j|winback|s1|c1|2025-03"
    assert got.get_content_type() == "multipart/alternative"
    text = got.get_body(preferencelist=("plain",))
    html = got.get_body(preferencelist=("html",))
    assert text is not None
    assert "券码 WB-1234" in text.get_content()
    assert html is not None
    assert "<b>李娜</b>" in html.get_content()


def test_smtp_classifies_refusals_and_an_absent_server(smtp_server: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp_server
    channel = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
    with pytest.raises(PermanentChannelError) as bounced:
        channel.send(email(to="bounce@example.com"), "k1")
    assert bounced.value.provider_code == "550"
    with pytest.raises(RetryableChannelError) as later:
        channel.send(email(to="later@example.com"), "k2")
    assert later.value.provider_code == "451"
    channel.send(email(), "k3")  # the connection still works after refusals
    channel.close()
    assert [m["To"] for m in mailbox.messages] == ["li.na@example.com"]
    nobody = SmtpChannel("127.0.0.1", free_port(), "news@tea.example.com", timeout=2)
    with pytest.raises(RetryableChannelError):
        nobody.send(email(), "k4")


def test_smtp_refuses_header_injection_and_bad_addresses(smtp_server: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp_server
    channel = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
    with pytest.raises(PermanentChannelError):
        channel.send(email(subject="hi\r\nBcc: all@example.com"), "k1")
    with pytest.raises(PermanentChannelError):
        channel.send(email(to="not an address"), "k2")
    with pytest.raises(PermanentChannelError):
        channel.send(Message(channel="sms", customer_id="c1", to="13800000000"), "k3")
    channel.close()
    assert mailbox.messages == []


# ---------------------------------------------------------------------------------------------
# Signed webhooks
# ---------------------------------------------------------------------------------------------

SECRET = b"0123456789abcdef-webhook-secret"


def test_webhook_is_signed_and_the_receiver_verifies_it(receiver: Receiver) -> None:
    verified: list[int] = []

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        try:
            verified.append(webhook.verify(SECRET, request.body, request.headers))
        except WebhookSignatureError as exc:
            return 401, {}, str(exc).encode()
        return 200, {"Content-Type": "application/json"}, b'{"id": "push-42"}'

    receiver.answer = answer
    channel = WebhookChannel(receiver.url + "/hook", SECRET)
    result = channel.send(Message(channel="webhook", customer_id="c1", to="device-1", text="hi",
                                  data={"sku": "T-1"}), "key-1")
    assert result.provider_id == "push-42"
    assert len(verified) == 1
    sent = receiver.requests[0]
    assert sent.headers["Idempotency-Key"] == "key-1"
    assert sent.json()["data"] == {"sku": "T-1"}
    assert sent.json()["customer_id"] == "c1"
    # What a receiver refuses: a changed body, another secret, an old timestamp (replay).
    with pytest.raises(WebhookSignatureError):
        webhook.verify(SECRET, sent.body.replace(b"hi", b"ho"), sent.headers)
    with pytest.raises(WebhookSignatureError):
        webhook.verify(b"another-secret-of-16+bytes", sent.body, sent.headers)
    with pytest.raises(WebhookSignatureError, match="window"):
        webhook.verify(SECRET, sent.body, sent.headers, now=time.time() + 301)
    assert webhook.verify(SECRET, sent.body, sent.headers, now=time.time() + 200) == verified[0]


def test_webhook_answers_map_to_retry_or_dead_letter(receiver: Receiver) -> None:
    channel = WebhookChannel(receiver.url + "/hook", SECRET)
    message = Message(channel="webhook", customer_id="c1", to="x", text="hi")
    receiver.answer = lambda _r: (503, {"Retry-After": "120"}, b"busy")
    with pytest.raises(RetryableChannelError) as busy:
        channel.send(message, "k")
    assert busy.value.retry_after == 120.0
    receiver.answer = lambda _r: (400, {}, b"bad payload")
    with pytest.raises(PermanentChannelError):
        channel.send(message, "k")
    gone = WebhookChannel(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout=2)
    with pytest.raises(RetryableChannelError):
        gone.send(message, "k")


# ---------------------------------------------------------------------------------------------
# 企业微信
# ---------------------------------------------------------------------------------------------


def test_wecom_robot_posts_the_documented_body(receiver: Receiver) -> None:
    receiver.answer = lambda _r: (200, {}, b'{"errcode":0,"errmsg":"ok"}')
    robot = WeComRobotChannel("robot-key-1", base_url=receiver.url)
    robot.send(Message(channel="wecom", customer_id="", to="", text="今晚8点直播，新品9折"), "k1")
    robot.send(Message(channel="wecom", customer_id="", to="", text="x",
                       data={"msgtype": "markdown", "markdown": "**新品** 上架"}), "k2")
    first, second = receiver.requests
    assert first.method == "POST"
    assert urlsplit(first.path).path == "/cgi-bin/webhook/send"
    assert dict(parse_qsl(urlsplit(first.path).query)) == {"key": "robot-key-1"}
    assert first.json() == {"msgtype": "text", "text": {"content": "今晚8点直播，新品9折"}}
    assert second.json() == {"msgtype": "markdown", "markdown": {"content": "**新品** 上架"}}
    receiver.answer = lambda _r: (200, {}, b'{"errcode":45009,"errmsg":"api freq out of limit"}')
    with pytest.raises(RetryableChannelError):
        robot.send(Message(channel="wecom", customer_id="", to="", text="x"), "k3")
    receiver.answer = lambda _r: (200, {}, b'{"errcode":93000,"errmsg":"invalid webhook url"}')
    with pytest.raises(PermanentChannelError):
        robot.send(Message(channel="wecom", customer_id="", to="", text="x"), "k4")


def test_wecom_app_fetches_a_token_and_refreshes_it_once_when_expired(receiver: Receiver) -> None:
    tokens = iter(["TOKEN-1", "TOKEN-2"])
    expired = {"TOKEN-1"}

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        path, query = urlsplit(request.path).path, dict(parse_qsl(urlsplit(request.path).query))
        if path == "/cgi-bin/gettoken":
            assert query == {"corpid": "ww123", "corpsecret": "s3cret"}
            return 200, {}, json.dumps({"errcode": 0, "errmsg": "ok", "access_token": next(tokens),
                                        "expires_in": 7200}).encode()
        assert path == "/cgi-bin/message/send"
        if query["access_token"] in expired:
            return 200, {}, b'{"errcode":42001,"errmsg":"access_token expired"}'
        return 200, {}, b'{"errcode":0,"errmsg":"ok","invaliduser":"","msgid":"MSG-9"}'

    receiver.answer = answer
    app = WeComAppChannel("ww123", "s3cret", 1000002, base_url=receiver.url)
    notice = Message(channel="wecom", customer_id="c1", to="zhangsan", text="客户李娜的回归券即将过期")
    result = app.send(notice,
                      "k1")
    assert result.provider_id == "MSG-9"
    sends = [r for r in receiver.requests if r.path.startswith("/cgi-bin/message/send")]
    assert len(sends) == 2
    body = sends[-1].json()
    assert body["touser"] == "zhangsan"
    assert body["agentid"] == 1000002
    assert body["msgtype"] == "text"
    assert body["enable_duplicate_check"] == 1
    assert body["text"] == {"content": "客户李娜的回归券即将过期"}
    app.send(Message(channel="wecom", customer_id="c1", to="zhangsan", text="again"), "k2")
    assert sum(r.path.startswith("/cgi-bin/gettoken") for r in receiver.requests) == 2  # token cached


# ---------------------------------------------------------------------------------------------
# Aliyun SMS
# ---------------------------------------------------------------------------------------------


def test_aliyun_signature_reproduces_the_documented_example() -> None:
    """Aliyun's own SendSms signature example (testId / testSecret, 2017-07-12T02:42:19Z)."""
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
        "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
    }
    assert sms_aliyun.sign(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert sms_aliyun.canonical_query(params).startswith(
        "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"
        "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91")


def test_aliyun_sms_request_verifies_at_the_receiver(receiver: Receiver) -> None:
    """The receiver recomputes the signature from the form it got, with the secret, like Aliyun."""

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        form = dict(parse_qsl(request.body.decode("ascii"), keep_blank_values=True))
        given = form.pop("Signature")
        canonical = "&".join(f"{sms_aliyun.percent_encode(k)}={sms_aliyun.percent_encode(form[k])}"
                             for k in sorted(form))
        to_sign = "POST&%2F&" + sms_aliyun.percent_encode(canonical)
        expected = base64.b64encode(hmac.new(b"AK-secret&", to_sign.encode(), hashlib.sha1).digest()).decode()
        if given != expected:
            return 200, {}, b'{"Code":"SignatureDoesNotMatch","Message":"bad signature"}'
        if form["PhoneNumbers"] == "10000000000":
            return 200, {}, b'{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"illegal"}'
        if form["PhoneNumbers"] == "13900000000":
            return 200, {}, b'{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"flow control"}'
        return 200, {}, b'{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"R1"}'

    receiver.answer = answer
    sms = AliyunSmsChannel("AK-id", "AK-secret", "茶小铺", endpoint=receiver.url,
                           clock=lambda: datetime(2025, 3, 9, 6, 59, 30, tzinfo=UTC))
    data = {"template_code": "SMS_123", "template_params": {"name": "李娜", "code": "WB-1234"}}
    result = sms.send(Message(channel="sms", customer_id="c1", to="+8613800000000", data=data), "j|w|s|c1|1")
    assert result.provider_id == "900619746936498440^0"
    form = dict(parse_qsl(receiver.requests[0].body.decode("ascii")))
    assert form["Action"] == "SendSms"
    assert form["Version"] == "2017-05-25"
    assert form["Format"] == "JSON"
    assert form["PhoneNumbers"] == "13800000000"
    assert form["SignName"] == "茶小铺"
    assert json.loads(form["TemplateParam"]) == {"name": "李娜", "code": "WB-1234"}
    assert form["Timestamp"] == "2025-03-09T06:59:30Z"
    assert form["OutId"] == key_digest("j|w|s|c1|1")
    with pytest.raises(PermanentChannelError) as illegal:
        sms.send(Message(channel="sms", customer_id="c2", to="10000000000", data=data), "k2")
    assert illegal.value.provider_code == "isv.MOBILE_NUMBER_ILLEGAL"
    with pytest.raises(RetryableChannelError):
        sms.send(Message(channel="sms", customer_id="c3", to="13900000000", data=data), "k3")
    with pytest.raises(PermanentChannelError, match="template_code"):
        sms.send(Message(channel="sms", customer_id="c4", to="13800000001"), "k4")
