"""Product reviews in Chinese and English whose ratings follow the customer's experience.

An order line may be reviewed after delivery (or after its refund). The experience decides both
the chance of a review and the rating: refunded > heavily delayed > poor-quality SKU > good, in
that order of precedence. Texts are assembled from templated sentences that match the rating and
the experience (delivery complaints for delays, refund sentences for refunds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from growthwheel.sim import catalogue as cat
from growthwheel.sim.orders import Orders
from growthwheel.sim.seasons import DAY

Array = npt.NDArray[Any]

EXPERIENCES = ("good", "poor_quality", "heavily_delayed", "refunded")
#: Probability that a line with this experience gets a review.
REVIEW_PROBABILITY = (0.10, 0.22, 0.25, 0.35)
#: Rating distribution (1..5 stars) per experience.
RATINGS = (
    (0.02, 0.03, 0.08, 0.25, 0.62),
    (0.15, 0.20, 0.25, 0.25, 0.15),
    (0.15, 0.20, 0.30, 0.20, 0.15),
    (0.45, 0.25, 0.15, 0.10, 0.05),
)
ENGLISH_SHARE = 0.2

_ZH: dict[str, tuple[str, ...]] = {
    "title_pos": ("很满意", "好评！", "值得购买", "会回购", "推荐", "超出预期", "五星好评"),
    "title_mid": ("一般", "还可以", "中规中矩", "有待改进"),
    "title_neg": ("差评", "很失望", "不推荐", "体验很差", "不会再买了"),
    "pos": ("质量很好，和描述一致。", "包装很用心，没有破损。", "性价比很高，推荐购买！",
            "用了一段时间，效果不错。", "客服态度很好，有问必答。", "物流很快，隔天就到了。",
            "已经是第二次买了，一如既往的好。", "{item}很好用，家里人都说不错。",
            "{item}比实体店便宜，划算。"),
    "mid": ("一般般吧，对得起这个价格。", "还行，没有想象中那么好。", "{item}凑合能用，细节有待改进。",
            "和图片有点色差，可以接受。"),
    "neg": ("和描述不符，很失望。", "做工粗糙，不值这个价。", "{item}用了两次就坏了。",
            "客服回复很慢，问题也没解决。"),
    "delivery_mid": ("物流有点慢，东西还可以。", "等了好几天才发货。"),
    "delivery_neg": ("物流太慢了，等了一个多星期才到。", "大促期间发货太慢，催了好几次。",
                     "快递拖了十天，差点影响使用。"),
    "refund_neg": ("收到就申请了退货退款。", "质量有问题，已经退款。", "不合适，退了。",
                   "{item}有瑕疵，退款处理还算及时。"),
}
_EN: dict[str, tuple[str, ...]] = {
    "title_pos": ("Very happy", "Great buy", "Worth it", "Will buy again", "Recommended",
                  "Better than expected"),
    "title_mid": ("It's okay", "Average", "Not bad, not great", "Could be better"),
    "title_neg": ("Disappointed", "Not recommended", "Poor quality", "Bad experience",
                  "Would not buy again"),
    "pos": ("Good quality and exactly as described.", "Carefully packaged, arrived in perfect "
            "condition.", "Great value for money.", "I've used it for a while and it works well.",
            "Customer service was quick and helpful.", "Fast delivery, arrived the next day.",
            "My second order, still as good as the first.", "The {item} is great, my family "
            "loves it.", "The {item} is cheaper here than in stores."),
    "mid": ("It's fine for the price.", "Okay, but not as good as I expected.",
            "The {item} does the job, but the details could be better.",
            "The colour is a bit different from the photos, acceptable."),
    "neg": ("Not as described, very disappointed.", "Cheaply made, not worth the price.",
            "The {item} broke after two uses.", "Customer service was slow and did not fix "
            "the problem."),
    "delivery_mid": ("Delivery was a bit slow but the product is fine.",
                     "It took several days to ship."),
    "delivery_neg": ("Delivery took more than a week.", "Shipping during the sale was very "
                     "slow, I had to chase them.", "The parcel was ten days late."),
    "refund_neg": ("I asked for a refund as soon as it arrived.", "Defective item, I got my "
                   "money back.", "It did not fit, so I returned it.", "The {item} had flaws; "
                   "at least the refund was quick."),
}
_CATEGORY_POS = {
    "Beauty": (("上脸很服帖，不油腻。", "味道很淡，敏感肌也能用。", "保湿效果很好，皮肤水水的。"),
               ("Feels light on the skin, not greasy.", "Barely any scent, fine for sensitive "
                "skin.", "Very moisturising, my skin feels great.")),
    "Baby": (("宝宝很喜欢，用着放心。", "材质柔软，宝宝用了不红屁屁。", "囤货必备，活动价很划算。"),
             ("My baby loves it, and I trust it.", "Soft material, no rash at all.",
              "A must for stocking up, great sale price.")),
    "Food": (("很新鲜，味道不错。", "日期很新，吃完还会再买。", "口感很好，家人都爱吃。"),
             ("Fresh and tasty.", "Long best-before date, will buy again.",
              "Great texture, the whole family loves it.")),
    "Apparel": (("面料舒服，版型好看。", "尺码标准，穿着很显瘦。", "做工精细，没有线头。"),
                ("Comfortable fabric and a nice cut.", "True to size and flattering.",
                 "Well made, no loose threads.")),
    "Electronics": (("做工精致，续航给力。", "连接稳定，音质不错。", "充电速度很快，很实用。"),
                    ("Well built with great battery life.", "Stable connection and good sound.",
                     "Charges fast, very practical.")),
    "Home": (("很实用，做工扎实。", "没有异味，质量不错。", "用着很方便，收纳整齐。"),
             ("Very practical and solidly made.", "No smell, good quality.",
              "Easy to use and keeps things tidy.")),
}


@dataclass(frozen=True)
class Reviews:
    """Reviews sorted by creation time."""

    line: Array  # index into the order lines
    rating: Array
    created_at: Array
    experience: Array  # index into EXPERIENCES
    english: Array  # bool
    title: list[str]
    body: list[str]


def _sentence(pool: tuple[str, ...], i: int, item: str) -> str:
    return pool[i % len(pool)].format(item=item)


def _texts(
    rng: np.random.Generator, rating: Array, experience: Array, english: Array, category: Array,
    item_zh: list[str], item_en: list[str],
) -> tuple[list[str], list[str]]:
    n = len(rating)
    picks = rng.integers(0, 1_000_000, size=(n, 4)).tolist()
    extra = (rng.random(n) < 0.5).tolist()
    titles: list[str] = []
    bodies: list[str] = []
    for i in range(n):
        en = bool(english[i])
        words = _EN if en else _ZH
        item = item_en[i] if en else item_zh[i]
        a, b, c, d = picks[i]
        stars, exp = int(rating[i]), EXPERIENCES[int(experience[i])]
        if stars >= 4:
            kind = "pos"
            cat_pool = _CATEGORY_POS[cat.CATEGORIES[int(category[i])].name][1 if en else 0]
            parts = [_sentence(cat_pool, b, item), _sentence(words["pos"], c, item)]
            if extra[i]:
                parts.append(_sentence(words["pos"], c + 1 + d % 3, item))
        elif stars == 3:
            kind = "mid"
            parts = [_sentence(words["mid"], b, item)]
            if exp == "heavily_delayed":
                parts.append(_sentence(words["delivery_mid"], c, item))
        else:
            kind = "neg"
            lead = {"refunded": "refund_neg", "heavily_delayed": "delivery_neg"}.get(exp, "neg")
            parts = [_sentence(words[lead], b, item)]
            if extra[i]:
                # A second complaint, never the same sentence twice.
                second = c if lead != "neg" else b + 1 + c % (len(words["neg"]) - 1)
                parts.append(_sentence(words["neg"], second, item))
        titles.append(_sentence(words[f"title_{kind}"], a, item))
        bodies.append((" " if en else "").join(parts))
    return titles, bodies


def make_reviews(
    rng: np.random.Generator, catalogue: cat.Catalogue, orders: Orders, horizon: int
) -> Reviews:
    """Draw which lines are reviewed, when, the rating and the text."""
    lo = orders.line_order
    n = len(lo)
    refunded = orders.refund_kind[lo] > 0
    poor = catalogue.poor_quality[orders.line_sku]
    exp = np.where(refunded, 3, np.where(orders.heavy_delay[lo], 2, np.where(poor, 1, 0)))
    when = np.where(
        refunded,
        orders.refunded_at[lo] + rng.exponential(DAY, n).astype(np.int64),
        orders.delivered_at[lo] + 3600 + rng.exponential(3 * DAY, n).astype(np.int64),
    )
    possible = refunded | (orders.delivered_at[lo] >= 0)
    chosen = possible & (rng.random(n) < np.asarray(REVIEW_PROBABILITY)[exp]) & (when < horizon)
    idx = np.flatnonzero(chosen)
    exp, when = exp[idx], when[idx]
    cdf = np.cumsum(np.asarray(RATINGS), axis=1)
    u = rng.random(len(idx))
    rating = 1 + (u[:, None] > cdf[exp]).sum(axis=1)
    rating = np.minimum(rating, 5)
    english = rng.random(len(idx)) < ENGLISH_SHARE
    sku = orders.line_sku[idx]
    titles, bodies = _texts(
        rng, rating, exp, english, catalogue.category[sku],
        [catalogue.template_zh[s] for s in sku.tolist()],
        [catalogue.template_en[s] for s in sku.tolist()],
    )
    order = np.lexsort((idx, when))
    return Reviews(
        line=idx[order],
        rating=rating[order],
        created_at=when[order],
        experience=exp[order],
        english=english[order],
        title=[titles[i] for i in order.tolist()],
        body=[bodies[i] for i in order.tolist()],
    )


def describe(reviews: Reviews) -> dict[str, Any]:
    """Review parameters and realised mean ratings, for ``ground_truth.json``."""
    mean = {
        e: round(float(reviews.rating[reviews.experience == i].mean()), 4)
        for i, e in enumerate(EXPERIENCES)
        if (reviews.experience == i).any()
    }
    return {
        "unit": "order line, after delivery (or after its refund)",
        "experience_precedence": list(reversed(EXPERIENCES)),
        "review_probability": dict(zip(EXPERIENCES, REVIEW_PROBABILITY, strict=True)),
        "rating_distribution_1_to_5": dict(zip(EXPERIENCES, (list(r) for r in RATINGS), strict=True)),
        "english_share": ENGLISH_SHARE,
        "realised_mean_rating": mean,
        "reviews": len(reviews.rating),
    }
