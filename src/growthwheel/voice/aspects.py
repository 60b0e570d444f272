"""Aspects of a review and their sentiment, zh and en (pure core; no I/O).

A review is cut into clauses (at punctuation and at contrast words — 但是 / 不过 / but / however —
so "质量很好，但是物流太慢" gives two clauses). A clause names an aspect when it holds one of the
aspect's keywords (:data:`ASPECTS`). The clause's polarity comes first from the opinion lexicon
(:data:`OPINION`: 好 / 慢 / 破损 / great / broke …, flipped by a negator just before it: 不 / 没 /
not / n't), and when the lexicon says nothing, from the sentiment model on the clause alone.

:func:`analyse` is the one entry point other domains use (the surveys run their comments through
it): ``analyse(texts, lang) -> list[Analysis]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from growthwheel.voice.sentiment import Label, Lang, detect_lang, label, normalise, score

ASPECT_NAMES = ("quality", "price", "logistics", "packaging", "service", "size_fit", "taste",
                "appearance", "performance")

#: Keywords per aspect and language (lower case; en: whole words, with a plural or past-tense
#: ending; a trailing ``*`` matches any word starting so).
ASPECTS: dict[str, dict[str, tuple[str, ...]]] = {
    "quality": {
        "zh": ("质量", "做工", "材质", "面料", "质感", "品质", "用料", "瑕疵", "粗糙", "线头", "坏了",
               "就坏", "耐用", "结实", "扎实", "掉色", "起球", "开胶", "异味", "假货", "正品"),
        "en": ("quality", "made", "build", "built", "material", "fabric", "broke", "broken",
               "defect*", "flaw", "durable", "sturdy", "stitch*", "cheaply", "fake", "genuine"),
    },
    "price": {
        "zh": ("价格", "价钱", "性价比", "便宜", "贵", "划算", "实惠", "值这个价", "不值", "活动价",
               "优惠", "价位", "对得起这个价"),
        "en": ("price", "value", "cheap", "expensive", "worth", "overpriced", "deal",
               "bargain", "cost"),
    },
    "logistics": {
        "zh": ("物流", "快递", "发货", "送货", "配送", "到货", "隔天就到", "运输", "顺丰", "派送",
               "才到", "收到货"),
        "en": ("deliver*", "shipping", "shipped", "ship", "arrived", "arrive",
               "courier", "parcel", "dispatch", "late"),
    },
    "packaging": {
        "zh": ("包装", "盒子", "破损", "封口", "泡沫", "漏液", "压坏", "外盒", "包裹"),
        "en": ("packag*", "box", "wrapped", "wrapping", "seal", "leak", "crushed", "dented"),
    },
    "service": {
        "zh": ("客服", "服务", "态度", "售后", "回复", "退款", "退货", "换货", "商家", "卖家"),
        "en": ("service", "support", "seller", "refund*", "return*", "repli*", "reply",
               "staff", "helpful"),
    },
    "size_fit": {
        "zh": ("尺码", "大小", "偏大", "偏小", "合身", "版型", "显瘦", "尺寸", "码数", "不合适"),
        "en": ("size", "fit", "fits", "tight", "loose", "small", "large", "flattering"),
    },
    "taste": {
        "zh": ("味道", "口感", "好吃", "难吃", "新鲜", "口味", "日期", "过期", "太甜", "太咸"),
        "en": ("taste", "tasty", "flavour", "flavor", "fresh", "delicious", "stale",
               "best-before", "expired"),
    },
    "appearance": {
        "zh": ("颜色", "色差", "外观", "好看", "款式", "图片", "颜值"),
        "en": ("colour", "color", "look", "photo", "picture", "design", "pretty", "ugly"),
    },
    "performance": {
        "zh": ("效果", "续航", "音质", "保湿", "好用", "充电", "连接", "信号", "功能"),
        "en": ("works", "work", "battery", "sound", "moisturis*", "moisturiz*", "charg*",
               "connection", "performance", "effective"),
    },
}

#: Opinion words (lower case) with their polarity.
OPINION: dict[str, dict[str, int]] = {
    "zh": {
        **dict.fromkeys(("好", "很好", "不错", "满意", "喜欢", "快", "很快", "便宜", "划算", "实惠",
                         "用心", "完好", "精致", "精细", "舒服", "新鲜", "好吃", "好看", "好用",
                         "给力", "及时", "热情", "耐心", "值", "超值", "推荐", "结实", "扎实",
                         "稳定", "合身", "标准", "显瘦", "服帖", "放心", "一致", "清晰", "柔软",
                         "舒适", "很新"), 1),
        **dict.fromkeys(("差", "慢", "太慢", "坏", "破损", "粗糙", "失望", "贵", "不值", "难吃",
                         "难用", "瑕疵", "漏", "色差", "偏大", "偏小", "拖", "差评", "敷衍",
                         "不符", "异味", "过期", "退款", "退货", "没解决", "不理", "变形", "等了",
                         "掉色", "起球", "开胶", "线头", "压坏", "催"), -1),
    },
    "en": {
        **dict.fromkeys(("good", "great", "excellent", "perfect", "fast", "quick", "quickly",
                         "love", "loves", "nice", "happy", "cheap", "cheaper", "value", "helpful",
                         "fresh", "tasty", "delicious", "comfortable", "sturdy", "solid",
                         "solidly", "well", "carefully", "flattering", "fine", "works",
                         "recommend", "stable", "practical", "tidy", "soft"), 1),
        **dict.fromkeys(("bad", "poor", "slow", "late", "broke", "broken", "damaged", "defective",
                         "disappointed", "disappointing", "expensive", "overpriced", "cheaply",
                         "flaws", "flaw", "stale", "tight", "rude", "useless", "terrible",
                         "awful", "worst", "leaked", "leaking", "crushed", "refund",
                         "returned", "chase", "different", "week", "weeks", "took", "wait", "waited",
                         "waiting"), -1),
    },
}
_NEG_ZH = ("不", "没", "没有", "别", "无", "未")
_NEG_EN = frozenset({"not", "no", "never", "hardly", "isn't", "wasn't", "aren't", "don't",
                     "doesn't", "didn't", "won't", "can't", "cannot"})
_CLAUSES = re.compile(r"[,.;:!?~\n，。；：！？～、…]+|但是|不过|可是|然而|\bbut\b|\bhowever\b"
                      r"|\balthough\b|\bthough\b")
def _en_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    parts = [re.escape(w[:-1]) if w.endswith("*") else re.escape(w) + r"(?:s|es|d|ed)?\b" for w in words]
    return re.compile(r"\b(?:" + "|".join(parts) + ")")


#: One pattern per aspect for English (whole words with an ending, or ``*`` prefixes).
_EN_ASPECT = {name: _en_pattern(spec["en"]) for name, spec in ASPECTS.items()}
_ZH_OPINION = re.compile("|".join(re.escape(w) for w in sorted(OPINION["zh"], key=len, reverse=True)))
_EN_TOKEN = re.compile(r"[a-z0-9'-]+")

Polarity = Literal["positive", "neutral", "negative"]


@dataclass(frozen=True)
class AspectMention:
    """One aspect named in one clause, with the clause's polarity."""

    aspect: str
    polarity: Polarity
    clause: str


@dataclass(frozen=True)
class Analysis:
    """A text's language, probability of being positive, label and aspects."""

    lang: Lang
    score: float
    label: Label
    aspects: list[AspectMention] = field(default_factory=list)


def clauses(text: str) -> list[str]:
    """The clauses of ``text`` (non-empty, stripped), cut at punctuation and contrast words."""
    return [c.strip() for c in _CLAUSES.split(text) if c and c.strip()]


def _aspects_in(clause: str, lang: Lang) -> list[str]:
    low = normalise(clause)
    found = []
    for name in ASPECT_NAMES:
        words = ASPECTS[name][lang]
        if lang == "zh":
            hit = any(w in low for w in words)
        else:
            hit = _EN_ASPECT[name].search(low) is not None
        if hit:
            found.append(name)
    return found


def lexicon_polarity(clause: str, lang: Lang) -> int:
    """Sum of the opinion words' polarities in ``clause`` (negated ones flipped); 0 if none."""
    low = normalise(clause)
    total = 0
    if lang == "zh":
        words = OPINION["zh"]
        for found in _ZH_OPINION.finditer(low):  # leftmost, longest word first
            i, match = found.start(), found.group()
            negated = any(low[max(0, i - len(n)):i] == n for n in _NEG_ZH) or \
                any(low[max(0, i - len(n) - 1):i - 1] == n for n in _NEG_ZH)
            total += -words[match] if negated else words[match]
        return total
    tokens = _EN_TOKEN.findall(low)
    for i, tok in enumerate(tokens):
        pol = OPINION["en"].get(tok)
        if pol is None:
            continue
        negated = any(t in _NEG_EN or t.endswith("n't") for t in tokens[max(0, i - 3):i])
        total += -pol if negated else pol
    return total


def _polarity(lex: int, p: float) -> Polarity:
    if lex > 0:
        return "positive"
    if lex < 0:
        return "negative"
    return label(p)


def analyse(texts: Sequence[str], lang: Lang | Literal["auto"] = "auto") -> list[Analysis]:
    """Sentiment and aspects of each text (``lang``: ``zh``, ``en`` or ``auto`` per text)."""
    langs: list[Lang] = [detect_lang(t) if lang == "auto" else lang for t in texts]
    whole = score(list(texts), lang)
    # every clause that names an aspect, scored in one batch per language
    pending: list[tuple[int, str, list[str], Lang]] = []
    for i, (text, code) in enumerate(zip(texts, langs, strict=True)):
        for clause in clauses(text):
            names = _aspects_in(clause, code)
            if names:
                pending.append((i, clause, names, code))
    clause_scores: list[float] = [0.5] * len(pending)
    for code in ("zh", "en"):
        idx = [k for k, p in enumerate(pending) if p[3] == code]
        if idx:
            for k, s in zip(idx, score([pending[k][1] for k in idx], code), strict=True):
                clause_scores[k] = s
    # one mention per aspect and text: the clauses' polarities add up (+1 / 0 / -1 each)
    votes: list[dict[str, list[tuple[int, str]]]] = [{} for _ in texts]
    for (i, clause, names, code), p in zip(pending, clause_scores, strict=True):
        pol = _polarity(lexicon_polarity(clause, code), p)
        sign = {"positive": 1, "neutral": 0, "negative": -1}[pol]
        for n in names:
            votes[i].setdefault(n, []).append((sign, clause))
    mentions: list[list[AspectMention]] = []
    for per_text in votes:
        found = []
        for name, vs in per_text.items():
            total = sum(v for v, _ in vs)
            pol_: Polarity = "positive" if total > 0 else "negative" if total < 0 else "neutral"
            want = 1 if total > 0 else -1 if total < 0 else 0
            quote = next((c for v, c in vs if v == want), vs[0][1])
            found.append(AspectMention(name, pol_, quote))
        mentions.append(found)
    return [Analysis(code, s, label(s), m)
            for code, s, m in zip(langs, whole, mentions, strict=True)]
