"""Aliyun (阿里云) SMS: the ``SendSms`` action of the ``dysmsapi`` RPC API, version 2017-05-25.

Request (as documented by Aliyun, "签名机制" of the RPC style): the common parameters
``AccessKeyId, Format=JSON, SignatureMethod=HMAC-SHA1, SignatureNonce, SignatureVersion=1.0,
Timestamp`` (UTC, ``YYYY-MM-DDThh:mm:ssZ``) plus ``Action=SendSms, Version=2017-05-25, RegionId,
PhoneNumbers, SignName, TemplateCode, TemplateParam`` (a JSON object as a string) and ``OutId``
(our idempotency key's digest, echoed in delivery receipts). The signature:

1. sort the parameters by name; percent-encode names and values per RFC 3986 (``A-Z a-z 0-9 - _
   . ~`` kept, space → ``%20``, ``*`` → ``%2A``) and join as ``k=v&k=v`` (the canonical query);
2. ``StringToSign = METHOD + "&" + enc("/") + "&" + enc(canonical query)``;
3. ``Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))``, sent as a parameter.

Answer: ``{"Code": "OK", "Message": "OK", "BizId": …, "RequestId": …}``; other ``Code`` values
are errors: flow control (``isv.BUSINESS_LIMIT_CONTROL``, ``Throttling.*``) and ``isp.*`` system
errors are retryable, the rest (illegal number, unknown template, bad signature) permanent.

Aliyun SMS sends *templates approved in its console*: ``message.data`` carries
``template_code`` and ``template_params`` (the text of the message is not sent). The endpoint is
configurable so that tests talk to a local receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from growthwheel.journeys.channels import _http
from growthwheel.journeys.channels.base import (
    Message,
    PermanentChannelError,
    RetryableChannelError,
    SendResult,
    key_digest,
    require,
)

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"
RETRYABLE_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL",
                             "isv.AMOUNT_NOT_ENOUGH", "isp.SYSTEM_ERROR", "isp.OUT_OF_SERVICE",
                             "ServiceUnavailable", "InternalError"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it (``~`` kept, space as ``%20``)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """``k=v&…`` sorted by name, each part percent-encoded (without ``Signature``)."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params)
                    if k != "Signature")


def sign(params: Mapping[str, str], access_key_secret: str, method: str = "POST") -> str:
    """The ``Signature`` parameter (Base64, not yet URL-encoded)."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSmsChannel:
    """Send text messages through Aliyun SMS (one phone number per message)."""

    name = "aliyun_sms"
    kind = "sms"

    def __init__(self, access_key_id: str, access_key_secret: str, sign_name: str, *,
                 endpoint: str = DEFAULT_ENDPOINT, region_id: str = "cn-hangzhou", method: str = "POST",
                 timeout: float = 10.0, clock: Callable[[], datetime] | None = None,
                 nonce: Callable[[], str] | None = None) -> None:
        if method not in ("GET", "POST"):
            raise ValueError("method must be GET or POST")
        self._key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self._endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._region = region_id
        self._method = method
        self._timeout = timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._nonce = nonce or (lambda: str(uuid.uuid4()))

    def params(self, message: Message, idempotency_key: str) -> dict[str, str]:
        """Every request parameter including ``Signature``."""
        require(message, self.kind)
        code = message.data.get("template_code")
        if not isinstance(code, str) or not code:
            raise PermanentChannelError("an Aliyun SMS message needs data.template_code (approved template)")
        template_params: Any = message.data.get("template_params", {})
        if not isinstance(template_params, Mapping):
            raise PermanentChannelError("data.template_params must be an object")
        phone = message.to.strip().removeprefix("+86") if message.to.startswith("+86") else message.to.strip()
        params = {
            "AccessKeyId": self._key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": key_digest(idempotency_key),
            "PhoneNumbers": phone,
            "RegionId": self._region,
            "SignName": str(message.data.get("sign_name", self.sign_name)),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": code,
            "TemplateParam": json.dumps({str(k): str(v) for k, v in template_params.items()},
                                        ensure_ascii=False, separators=(",", ":")),
            "Timestamp": self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = sign(params, self._secret, self._method)
        return params

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """Call ``SendSms``; the answer's ``BizId`` is the provider id."""
        params = self.params(message, idempotency_key)
        query = "Signature=" + percent_encode(params["Signature"]) + "&" + canonical_query(params)
        if self._method == "GET":
            answer = _http.call("GET", f"{self._endpoint}?{query}", provider="Aliyun SMS",
                                timeout=self._timeout)
        else:
            answer = _http.call("POST", self._endpoint, provider="Aliyun SMS", body=query.encode("ascii"),
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                timeout=self._timeout)
        data = answer.json("Aliyun SMS")
        if not isinstance(data, dict):
            raise RetryableChannelError("Aliyun SMS: unexpected answer")
        code = str(data.get("Code", ""))
        if code == "OK":
            return SendResult(provider_id=str(data.get("BizId") or "") or None,
                              detail=str(data.get("RequestId", "")))
        note = f"Aliyun SMS {code}: {data.get('Message', '')}"
        if code in RETRYABLE_CODES or code.startswith(("Throttling", "isp.")):
            raise RetryableChannelError(note, provider_code=code)
        raise PermanentChannelError(note, provider_code=code)

    def close(self) -> None:
        """Nothing to release."""
