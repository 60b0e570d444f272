"""Reply templates of the service queue, zh and en, one per kind of complaint.

:func:`suggest` picks the template for a case's negative aspects (the first aspect that has a
template of its own, else the general apology); :func:`render` gives its words.
"""

from __future__ import annotations

from collections.abc import Sequence

TEMPLATES: dict[str, dict[str, str]] = {
    "apology": {
        "zh": "亲，非常抱歉给您带来不好的体验！我们已经记录了您的反馈，客服会在 24 小时内联系您处理，"
              "给您一个满意的答复。",
        "en": "We are sorry about your experience. We have logged your feedback and our team will "
              "contact you within 24 hours to put it right.",
    },
    "quality": {
        "zh": "亲，非常抱歉商品质量没有达到您的期望！请联系客服提供照片，我们为您免费换新或退款，"
              "同时已将问题反馈给品控部门改进。",
        "en": "We are sorry the product did not meet your expectations. Please send our support team "
              "a photo and we will replace or refund it at no cost; the issue has gone to our quality team.",
    },
    "logistics": {
        "zh": "亲，抱歉让您久等了！我们已与快递公司核实延误原因，并会优化发货安排，"
              "为表歉意，客服将为您补偿一张店铺优惠券。",
        "en": "Sorry for the long wait. We have taken the delay up with the courier and are improving "
              "our dispatch; our team will send you a coupon as an apology.",
    },
    "packaging": {
        "zh": "亲，非常抱歉包装出现问题！请联系客服提供照片，我们会为您补发或退款，并加强包装防护。",
        "en": "We are sorry the packaging let you down. Send us a photo and we will reship or refund, "
              "and we are strengthening our packing.",
    },
    "size_fit": {
        "zh": "亲，抱歉尺码不合适！我们支持免费换码，请联系客服，我们也会完善详情页的尺码建议。",
        "en": "Sorry the size was not right. Exchanges are free: contact our team, and we are "
              "improving the size guide on the product page.",
    },
    "service": {
        "zh": "亲，非常抱歉客服没有及时解决您的问题！主管已经跟进，会在今天内给您回电处理。",
        "en": "We are sorry our team did not solve your problem in time. A supervisor is following up "
              "and will call you today.",
    },
    "taste": {
        "zh": "亲，抱歉口味没有让您满意！请联系客服，我们为您退换，并已反馈给产品团队。",
        "en": "Sorry the taste was not to your liking. Contact us for a refund or exchange; we have "
              "passed your feedback to the product team.",
    },
}
#: Aspects with a template of their own, in the order they are preferred.
_BY_ASPECT = ("quality", "logistics", "packaging", "size_fit", "taste", "service")


def suggest(negative_aspects: Sequence[str]) -> str:
    """The template for a review whose negative aspects are ``negative_aspects``."""
    for aspect in _BY_ASPECT:
        if aspect in negative_aspects:
            return aspect
    return "apology"


def render(key: str, lang: str) -> str:
    """The words of template ``key`` in ``lang`` (``zh`` or ``en``; anything else: ``zh``)."""
    words = TEMPLATES[key]
    return words["en"] if lang == "en" else words["zh"]
