"""Message templates in zh and en, rendered in Jinja2's immutable sandbox.

A :class:`MessageTemplate` holds, per language, a subject, a plain text and (for email) an HTML
body, each a Jinja template written by an operator, so each runs in
:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no attribute starting with ``_``, no
access to Python internals, no mutation of the context, ``range`` capped. HTML is autoescaped.

What a template can use:

- ``customer`` (personalisation: ``{{ customer.name or "朋友" }}``), ``shop``, any extra context;
- ``link(url, content=None)``: the URL with UTM tags behind the signed click redirect;
- ``unsubscribe_url``: the customer's one-click unsubscribe link for this channel;
- ``survey_url(survey)``: the customer's signed answer page of an NPS survey (its id or name);
- (an email's HTML ends with a 1×1 open pixel, ``links.LinkMaker.open_pixel``);
- ``products``: a list of ``{"sku", "name", "price" (minor units), "url", "image"}`` — in a journey's
  messages the customer's recommendations (``recs``) unless the journey's context brings its own —
  and ``product_block(products)``: cards in HTML, one line each in text, every link tracked (a
  product without a price shows none);
- filter ``money``: ``{{ 1990|money }}`` → ``¥19.90`` in the shop's currency.

An email whose templates do not mention ``unsubscribe_url`` gets a footer with it (zh or en),
and always the RFC 8058 ``List-Unsubscribe`` headers. SMS templates (Aliyun) render
``sms_params``, each value a small template, for the provider's approved template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from growthwheel.errors import InvalidArgumentError
from growthwheel.journeys.channels.base import Message
from growthwheel.journeys.channels.links import LinkMaker, unsubscribe_headers
from growthwheel.kit.money import currency_exponent, major_text

LANGS = ("zh", "en")
_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}
#: Longest rendered part (characters): a template that loops to produce more is refused.
MAX_OUTPUT = 200_000

FOOTER = {
    "zh": ("不想再收到这类邮件？一键退订：{url}", '不想再收到这类邮件？<a href="{url}">一键退订</a>'),
    "en": ("Don't want these emails? Unsubscribe in one click: {url}",
           'Don\'t want these emails? <a href="{url}">Unsubscribe in one click</a>'),
}
SMS_OPT_OUT = {"zh": "拒收请回复R", "en": "Reply STOP to opt out"}


class TemplateError(InvalidArgumentError):
    """A template that does not compile or fails while rendering; ``field`` names the part."""

    code = "template_invalid"
    status = 422

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class TemplateText:
    """One language's parts of a template."""

    subject: str = ""
    text: str = ""
    html: str | None = None
    sms_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageTemplate:
    """A message template for one channel kind, in zh and/or en."""

    name: str
    channel: str
    texts: Mapping[str, TemplateText]
    sms_template_code: str | None = None
    wecom_msgtype: str = "text"

    def text_for(self, lang: str) -> tuple[str, TemplateText]:
        """The language actually used for ``lang`` (the other one when missing) and its parts."""
        if lang in self.texts:
            return lang, self.texts[lang]
        for other in LANGS:
            if other in self.texts:
                return other, self.texts[other]
        raise TemplateError("texts", "the template has no zh or en text")


def _money_filter(currency: str) -> Callable[..., str]:
    exponent = currency_exponent(currency)

    def money(value: Any, code: str | None = None) -> str:
        if value is None or isinstance(value, bool) or not isinstance(value, int):
            return "–" if value is None else str(value)
        cur = (code or currency).upper()
        exp = exponent if code is None else currency_exponent(cur)
        sign = "-" if value < 0 else ""
        return f"{sign}{_SYMBOLS.get(cur, cur + ' ')}{major_text(abs(value), exp)}"

    return money


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=html, undefined=jinja2.Undefined,
                                        trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _money_from_context
    return env


@jinja2.pass_context
def _money_from_context(ctx: Any, value: Any, code: str | None = None) -> str:
    """The ``money`` filter: formats with the render's currency (the ``money`` context function)."""
    money = ctx.get("money")
    return str(money(value, code)) if callable(money) else str(value)


_HTML_ENV = _environment(html=True)
_TEXT_ENV = _environment(html=False)


def _parts(template: MessageTemplate) -> list[tuple[str, str, bool]]:
    parts: list[tuple[str, str, bool]] = []
    for lang, text in template.texts.items():
        parts += [(f"texts.{lang}.subject", text.subject, False), (f"texts.{lang}.text", text.text, False)]
        if text.html is not None:
            parts.append((f"texts.{lang}.html", text.html, True))
        parts += [(f"texts.{lang}.sms_params.{name}", value, False)
                  for name, value in text.sms_params.items()]
    return parts


def validate(template: MessageTemplate) -> None:
    """Refuse a template that cannot work (unknown language, syntax error, SMS without a code)."""
    if not template.texts:
        raise TemplateError("texts", "give the text in zh or en (或中文)")
    for lang in template.texts:
        if lang not in LANGS:
            raise TemplateError(f"texts.{lang}", "language must be zh or en")
    if template.channel == "sms" and not template.sms_template_code:
        raise TemplateError("sms_template_code",
                            "an SMS template needs the provider's approved template code")
    if template.channel == "email":
        for lang, text in template.texts.items():
            if not text.subject.strip():
                raise TemplateError(f"texts.{lang}.subject", "an email needs a subject (邮件需要主题)")
    for name, source, html in _parts(template):
        try:
            (_HTML_ENV if html else _TEXT_ENV).parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(name, f"line {exc.lineno}: {exc.message}") from exc


def _render(field_name: str, source: str, html: bool, context: Mapping[str, Any]) -> str:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        out = env.from_string(source).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(field_name, f"line {exc.lineno}: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(field_name, f"not allowed in a template: {exc}") from exc
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateError(field_name, f"cannot render: {exc}") from exc
    if len(out) > MAX_OUTPUT:
        raise TemplateError(field_name, f"renders to more than {MAX_OUTPUT} characters")
    return out


def _product_blocks(links: LinkMaker | None, money: Callable[..., str]
                    ) -> tuple[Callable[..., Markup], Callable[..., str]]:
    def target(item: Mapping[str, Any], n: int) -> str | None:
        url = item.get("url")
        if not isinstance(url, str) or not url:
            return None
        return links.click(url, content=f"product-{item.get('sku', n)}") if links else url

    def html_block(products: Sequence[Mapping[str, Any]] | None = None) -> Markup:
        cells = []
        for n, item in enumerate(products or ()):
            href = target(item, n)
            image = item.get("image")
            img = (Markup('<img src="{}" alt="{}" width="160" style="display:block;max-width:100%">')
                   .format(image, item.get("name", ""))) if isinstance(image, str) and image else Markup("")
            name = escape(item.get("name", ""))
            title = Markup('<a href="{}">{}</a>').format(href, name) if href else name
            price = item.get("price")
            cells.append(Markup('<td class="gw-product" style="padding:8px;vertical-align:top">{}'
                                '<div>{}</div>{}</td>')
                         .format(img, title, Markup("<div><strong>{}</strong></div>").format(money(price))
                                 if price is not None else Markup("")))
        if not cells:
            return Markup("")
        return Markup('<table role="presentation" class="gw-products"><tr>{}</tr></table>').format(
            Markup("").join(cells))

    def text_block(products: Sequence[Mapping[str, Any]] | None = None) -> str:
        lines = []
        for n, item in enumerate(products or ()):
            href = target(item, n)
            price = item.get("price")
            line = f"- {item.get('name', '')}" + (f"  {money(price)}" if price is not None else "")
            lines.append(f"{line}  {href}" if href else line)
        return "\n".join(lines)

    return html_block, text_block


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: customer id, address in the channel's terms, language, attributes."""

    customer_id: str
    address: str
    lang: str = "zh"
    attributes: Mapping[str, Any] = field(default_factory=dict)


def render(template: MessageTemplate, recipient: Recipient, *, currency: str = "CNY",
           links: LinkMaker | None = None, context: Mapping[str, Any] | None = None,
           shop: Mapping[str, Any] | None = None) -> Message:
    """Render ``template`` for ``recipient`` into a :class:`Message` ready for a channel."""
    validate(template)
    lang, parts = template.text_for(recipient.lang if recipient.lang in LANGS else "zh")
    money = _money_filter(currency)
    html_products, text_products = _product_blocks(links, money)
    unsubscribe_url = links.unsubscribe() if links else ""

    def link(url: str, content: str | None = None) -> str:
        return links.click(url, content) if links else url

    def survey_url(survey: str) -> str:
        return links.survey(survey) if links else ""

    base: dict[str, Any] = {
        "customer": dict(recipient.attributes), "shop": dict(shop or {}), "lang": lang,
        "unsubscribe_url": unsubscribe_url, "link": link, "survey_url": survey_url, **dict(context or {}),
    }
    base.setdefault("products", [])
    text_ctx = {**base, "product_block": text_products, "money": money}
    html_ctx = {**base, "product_block": html_products, "money": money}
    prefix = f"texts.{lang}"
    subject = _render(f"{prefix}.subject", parts.subject, False, text_ctx).strip()
    text = _render(f"{prefix}.text", parts.text, False, text_ctx)
    html = _render(f"{prefix}.html", parts.html, True, html_ctx) if parts.html is not None else None
    headers: dict[str, str] = {}
    data: dict[str, Any] = {}
    if template.channel == "email" and unsubscribe_url:
        mentioned = "unsubscribe_url" in parts.text or "unsubscribe_url" in (parts.html or "")
        if not mentioned:
            text_footer, html_footer = FOOTER[lang]
            text = f"{text.rstrip()}\n\n--\n{text_footer.format(url=unsubscribe_url)}\n"
            if html is not None:
                html += str(Markup('<p class="gw-footer" style="color:#888;font-size:12px">{}</p>').format(
                    Markup(html_footer).format(url=unsubscribe_url)))
        headers = unsubscribe_headers(unsubscribe_url)
    if template.channel == "email" and links is not None and html is not None:  # the open pixel
        html += str(Markup('<img src="{}" width="1" height="1" alt="" style="display:block;border:0">')
                    .format(links.open_pixel()))
    if template.channel == "sms":
        data = {"template_code": template.sms_template_code,
                "template_params": {name: _render(f"{prefix}.sms_params.{name}", value, False, text_ctx)
                                    for name, value in parts.sms_params.items()}}
    if template.channel == "wecom":
        data = {"msgtype": template.wecom_msgtype}
    return Message(channel=template.channel, customer_id=recipient.customer_id, to=recipient.address,
                   subject=subject, text=text, html=html, lang=lang, headers=headers, data=data)
