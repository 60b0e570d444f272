"""Train the shipped sentiment models: ``python -m growthwheel.voice.train [--cache DIR]``.

For each language the regularisation ``c`` is chosen on a validation fold carved from the
training part (never the held-out part), then the model is fitted on the whole training part and
written to ``voice/model/sentiment_<lang>.npz``. Deterministic: the same corpora give the same file.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

from growthwheel.voice import corpora
from growthwheel.voice.sentiment import SentimentModel, fit, metrics, normalise

GRID = (1.0, 4.0, 16.0)
MODEL_DIR = Path(__file__).parent / "model"


def choose_c(c_grid: tuple[float, ...], corpus: corpora.Corpus) -> float:
    """The ``c`` with the best validation accuracy (validation: one training text in five)."""
    val = [zlib.crc32(normalise(t).encode()) % 5 == 1 for t in corpus.train_texts]
    tr_t = [t for t, v in zip(corpus.train_texts, val, strict=True) if not v]
    tr_y = [y for y, v in zip(corpus.train_labels, val, strict=True) if not v]
    va_t = [t for t, v in zip(corpus.train_texts, val, strict=True) if v]
    va_y = [y for y, v in zip(corpus.train_labels, val, strict=True) if v]
    best, best_acc = c_grid[0], -1.0
    for c in c_grid:
        m = fit(tr_t, tr_y, corpus.lang, c=c)
        acc = metrics(va_y, (m.proba(va_t) >= 0.5).astype(int))["accuracy"]
        print(f"  {corpus.lang} c={c}: validation accuracy {acc:.4f}")
        if acc > best_acc:
            best, best_acc = c, acc
    return best


def train(corpus: corpora.Corpus) -> SentimentModel:
    """The model for ``corpus.lang`` fitted on the training part with the chosen ``c``."""
    c = choose_c(GRID, corpus)
    m = fit(corpus.train_texts, corpus.train_labels, corpus.lang, c=c)
    m.meta["source"] = corpus.source
    return m


def main() -> None:
    """Train both languages and write the model files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=Path("growthwheel-data/corpora"))
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    for corpus in (corpora.zh_corpus(), corpora.en_corpus(corpora.npm_tarball(args.cache))):
        m = train(corpus)
        held = metrics(corpus.test_labels, (m.proba(corpus.test_texts) >= 0.5).astype(int))
        print(f"{corpus.lang}: train {len(corpus.train_texts)}, held out {len(corpus.test_texts)}, "
              f"accuracy {held['accuracy']:.4f}, macro F1 {held['macro_f1']:.4f}")
        m.save(args.out / f"sentiment_{corpus.lang}.npz")


if __name__ == "__main__":
    main()
