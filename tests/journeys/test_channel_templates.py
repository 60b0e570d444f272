"""Sandboxed zh/en templates with personalisation, product blocks, tracked links and unsubscribe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from growthwheel.journeys.channels import links
from growthwheel.journeys.channels.links import InvalidLinkError, LinkMaker, Utm, add_utm
from growthwheel.journeys.channels.templates import (
    MessageTemplate,
    Recipient,
    TemplateError,
    TemplateText,
    render,
    validate,
)

SECRET = b"s" * 32
WINBACK = MessageTemplate(
    name="winback", channel="email",
    texts={
        "zh": TemplateText(
            subject="{{ customer.name or '朋友' }}，好久不见",
            text="送您 {{ coupon.value|money }} 回归券：{{ coupon.code }}\n{{ product_block(products) }}\n"
                 "去看看：{{ link('https://tea.example.com/new?ref=mail', 'cta') }}",
            html="<p>{{ customer.name }}，送您 <b>{{ coupon.value|money }}</b> 回归券 {{ coupon.code }}</p>"
                 "{{ product_block(products) }}"
                 "<a href=\"{{ link('https://tea.example.com/new') }}\">去看看</a>"),
        "en": TemplateText(subject="We miss you, {{ customer.name or 'friend' }}",
                           text="Here is {{ coupon.value|money }} off: {{ coupon.code }}"),
    })
PRODUCTS = [{"sku": "T-1", "name": "明前龙井 <250g>", "price": 12800, "url": "https://tea.example.com/p/T-1",
             "image": "https://cdn.example.com/t1.jpg"},
            {"sku": "T-2", "name": "白毫银针", "price": 9900}]


def maker(customer: str = "c1") -> LinkMaker:
    return LinkMaker(SECRET, "https://growth.example.com", customer, "email", "j|wb|s1|" + customer + "|1",
                     Utm("growthwheel", "email", "winback"))


def test_zh_email_is_personalised_with_products_tracked_links_and_unsubscribe() -> None:
    context = {"coupon": {"code": "WB-1234", "value": 2000}, "products": PRODUCTS}
    message = render(WINBACK, Recipient("c1", "li@example.com", "zh", {"name": "李娜"}), links=maker(),
                     context=context)
    assert message.subject == "李娜，好久不见"
    assert "送您 ¥20.00 回归券：WB-1234" in message.text
    assert "- 明前龙井 <250g>  ¥128.00  https://growth.example.com/m/c/" in message.text
    assert "- 白毫银针  ¥99.00" in message.text
    assert message.html is not None
    assert "明前龙井 &lt;250g&gt;" in message.html
    assert "<250g>" not in message.html
    assert '<img src="https://cdn.example.com/t1.jpg"' in message.html
    # every link goes through the signed redirect, and the redirect target carries UTM tags
    hrefs = [part.split('"')[0] for part in message.html.split('href="')[1:]]
    assert hrefs
    assert all(h.startswith("https://growth.example.com/m/") for h in hrefs)
    targets = [links.read_click(SECRET, h.rsplit("/", 1)[1]).url for h in hrefs if "/m/c/" in h]
    product = parse_qs(urlsplit(targets[0]).query)
    assert product["utm_source"] == ["growthwheel"]
    assert product["utm_campaign"] == ["winback"]
    assert product["utm_content"] == ["product-T-1"]
    # unsubscribe: RFC 8058 headers and a footer, the token names the customer and the channel
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message.headers["List-Unsubscribe"].strip("<>")
    assert "一键退订" in message.html
    assert url in message.text
    token = links.read_unsubscribe(SECRET, url.rsplit("/", 1)[1])
    assert (token.customer_id, token.channel) == ("c1", "email")


def test_english_and_fallback_languages() -> None:
    context = {"coupon": {"code": "WB-9", "value": 500}}
    en = render(WINBACK, Recipient("c2", "a@example.com", "en", {}), links=maker("c2"), context=context,
                currency="USD")
    assert en.subject == "We miss you, friend"
    assert "Here is $5.00 off: WB-9" in en.text
    assert "Unsubscribe in one click" in en.text
    assert en.html is None
    only_zh = MessageTemplate("x", "email", {"zh": TemplateText(subject="你好", text="内容")})
    assert render(only_zh, Recipient("c3", "b@example.com", "en")).subject == "你好"


def test_the_sandbox_refuses_python_internals_and_bad_templates_name_the_field() -> None:
    evil = MessageTemplate("evil", "email", {"en": TemplateText(
        subject="hi", text="{{ ''.__class__.__mro__[1].__subclasses__() }}")})
    with pytest.raises(TemplateError) as caught:
        render(evil, Recipient("c1", "a@example.com", "en"))
    assert caught.value.field == "texts.en.text"
    assert caught.value.status == 422
    mutate = MessageTemplate("m", "email",
                             {"en": TemplateText(subject="hi", text="{{ products.append(1) }}")})
    with pytest.raises(TemplateError):
        render(mutate, Recipient("c1", "a@example.com", "en"))
    broken = MessageTemplate("b", "email", {"zh": TemplateText(subject="hi", html="{% if %}")})
    with pytest.raises(TemplateError, match=r"texts\.zh\.html: line 1"):
        validate(broken)
    with pytest.raises(TemplateError, match="subject"):
        validate(MessageTemplate("s", "email", {"zh": TemplateText(text="x")}))
    with pytest.raises(TemplateError, match="sms_template_code"):
        validate(MessageTemplate("s", "sms", {"zh": TemplateText(text="x")}))


def test_sms_template_renders_provider_parameters() -> None:
    sms = MessageTemplate("sms", "sms", {"zh": TemplateText(sms_params={"name": "{{ customer.name }}",
                                                                        "code": "{{ coupon.code }}"})},
                          sms_template_code="SMS_123")
    message = render(sms, Recipient("c1", "13800000000", "zh", {"name": "李娜"}),
                     context={"coupon": {"code": "WB-1"}})
    assert message.data == {"template_code": "SMS_123", "template_params": {"name": "李娜", "code": "WB-1"}}


def test_tokens_cannot_be_forged_or_reused_for_another_purpose() -> None:
    url = maker().click("https://tea.example.com/p/T-1")
    token = url.rsplit("/", 1)[1]
    body, mac = token.split(".")
    assert links.read_click(SECRET, token).customer_id == "c1"
    with pytest.raises(InvalidLinkError):
        links.read_click(b"x" * 32, token)  # another server's secret
    with pytest.raises(InvalidLinkError):
        links.read_unsubscribe(SECRET, token)  # a click token is no unsubscribe token
    forged = links.make_token(b"x" * 32, links.CLICK, {"c": "c1", "ch": "email", "k": "k", "u": "https://evil.example"})
    with pytest.raises(InvalidLinkError):
        links.read_click(SECRET, forged)
    with pytest.raises(InvalidLinkError):
        links.read_click(SECRET, body[:-2] + "AA." + mac)
    with pytest.raises(InvalidLinkError):
        links.read_click(SECRET, "garbage")
    with pytest.raises(ValueError, match="absolute"):
        maker().click("javascript:alert(1)")


def test_utm_tags_replace_old_ones_and_keep_other_parameters() -> None:
    url = add_utm("https://tea.example.com/p?id=7&utm_source=old#top", Utm("gw", "sms", "spring", "cta"))
    parts = urlsplit(url)
    assert parse_qs(parts.query) == {"id": ["7"], "utm_source": ["gw"], "utm_medium": ["sms"],
                                     "utm_campaign": ["spring"], "utm_content": ["cta"]}
    assert parts.fragment == "top"
