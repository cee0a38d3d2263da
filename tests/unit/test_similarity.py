"""Likely duplicates with the real sentence encoder (all-MiniLM-L6-v2, shipped in a wheel)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from centricity_ideas.similarity import (
    DUPLICATE_THRESHOLD,
    RECENT_EMBEDDINGS,
    SENTENCE_ENCODER,
    CharNgramIndex,
    SentenceEncoder,
    SimilarityIndex,
    embedding_text,
    top_matches,
)
from centricity_ideas.store import has_current_embedding

STORED = [
    (
        "desk",
        "hr",
        "Reserve a workstation before coming in",
        "I commute 90 minutes and sometimes there's nowhere to sit; let me book a seat the day before.",
        "submitted",
    ),
    (
        "points",
        "retail",
        "Warn members about expiring loyalty points",
        "Send an automatic reminder 30 days before their points lapse.",
        "submitted",
    ),
    (
        "scanners",
        "wholesale",
        "Replace the warehouse handheld scanners",
        "The old devices are slow and drop the Wi-Fi in the cold store.",
        "submitted",
    ),
    (
        "bikes",
        "hr",
        "More bicycle parking at head office",
        "The racks are full by 8am; add covered bike stands by the entrance.",
        "submitted",
    ),
]
# The same requests in other words: hardly a character n-gram in common.
DESK = (
    "Book a desk in advance",
    "Let staff pick an office desk for tomorrow, so people travelling in are sure to have a place.",
)
REWARDS = (
    "Remind customers before their rewards expire",
    "Email shoppers a month ahead so no bonus is lost.",
)
UNRELATED = ("Let shoppers pay with a gift card online", "Gift cards only work in stores today.")


class CountingEncoder(SentenceEncoder):
    """The real encoder, counting the texts it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def model(self) -> object:
        return SENTENCE_ENCODER.model()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.encoded += texts
        return super().encode(texts, batch_size)


@pytest.fixture(scope="module")
def index() -> SimilarityIndex:
    index = SimilarityIndex()
    index.add(STORED)
    return index


def test_paraphrases_are_found_that_character_ngrams_miss(index: SimilarityIndex) -> None:
    ngrams = CharNgramIndex()
    ngrams.add(STORED)
    found = index.similar([DESK, REWARDS], limit=3)
    assert [[d.idea_id for d in f] for f in found] == [["desk"], ["points"]]
    assert all(d.similarity >= DUPLICATE_THRESHOLD for f in found for d in f)
    # What the service suggested before: nothing for either.
    assert ngrams.similar([DESK, REWARDS], limit=3) == [[], []]


def test_an_unrelated_idea_gets_no_suggestion(index: SimilarityIndex) -> None:
    assert index.similar([UNRELATED], limit=3) == [[]]


def test_the_idea_itself_and_merged_duplicates_are_never_suggested() -> None:
    index = SimilarityIndex()
    index.add(STORED)
    desk = STORED[0]
    assert index.similar([(desk[2], desk[3])], limit=3, exclude=["desk"]) == [[]]
    (found,) = index.similar([(desk[2], desk[3])], limit=3)
    assert [(d.idea_id, d.similarity) for d in found] == [("desk", 1.0)]
    index.add([(*desk[:4], "duplicate")])
    assert index.similar([DESK], limit=3) == [[]]


def test_search_still_matches_spelling_and_duplicates_by_meaning(index: SimilarityIndex) -> None:
    assert [idea_id for idea_id, _ in index.search("scaners", limit=3, min_coverage=0.5)] == ["scanners"]
    assert index.search("desk", limit=3) == []  # text search: no meaning


def test_each_text_is_encoded_once_and_a_new_status_needs_no_encoding() -> None:
    encoder = CountingEncoder()
    index = SimilarityIndex(encoder=encoder)
    index.add(STORED)
    index.similar([DESK], limit=3, exclude=["new"])
    index.add([("new", "hr", *DESK, "submitted")])  # as a submission: searched, then added
    index.add([(*STORED[1][:4], "under_review")])
    assert len(encoder.encoded) == len(STORED) + 1
    # As a burst from Kafka: added, then searched for, more ideas than the recent texts kept.
    burst = [(f"b{n}", "hr", f"Idea {n}", "", "submitted") for n in range(RECENT_EMBEDDINGS + 50)]
    index.add(burst)
    index.similar([(f"Idea {n}", "") for n in range(len(burst))], limit=3)
    assert len(encoder.encoded) == len(STORED) + 1 + len(burst)


def test_the_model_is_loaded_from_the_installed_package_offline() -> None:
    vectors = SENTENCE_ENCODER.encode(["Book a desk", "Reserve a workstation"])
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["TRANSFORMERS_OFFLINE"]) == ("1", "1")
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_stored_embeddings_are_reused_unless_the_text_changed() -> None:
    made = SimilarityIndex()
    made.add(STORED)
    stored = made.embeddings(item[0] for item in STORED)
    # A restart, or another replica: what is stored with the ideas is not encoded again.
    encoder = CountingEncoder()
    restarted = SimilarityIndex(encoder=encoder)
    edited = ("bikes", "hr", "More bicycle parking", "Covered stands by the entrance.", "submitted")
    restarted.add([*STORED[:3], edited], stored)
    assert encoder.encoded == [embedding_text(edited[2], edited[3])]
    assert restarted.similar([DESK], limit=1) == made.similar([DESK], limit=1)
    assert has_current_embedding(
        {"title": STORED[0][2], "description": STORED[0][3], "embedding": stored["desk"]}
    )
    assert not has_current_embedding(
        {"title": edited[2], "description": edited[3], "embedding": stored["bikes"]}
    )


def test_the_encoder_serves_several_threads_at_once() -> None:
    # The duplicate finder's thread and HTTP submissions encode at the same time, unserialised.
    texts = [embedding_text(title, text) for _, _, title, text, _ in STORED] * 20
    alone = SENTENCE_ENCODER.encode(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda _: SENTENCE_ENCODER.encode(texts), range(4)))
    assert all(np.allclose(result, alone, atol=1e-5) for result in together)


def test_merged_twins_do_not_push_the_idea_they_went_into_out_of_the_suggestions() -> None:
    # Issue #18: five merged near-copies filled the top slots and hid the surviving idea.
    scores = np.array([0.99, 0.99, 0.99, 0.99, 0.99, 0.98, 0.10], dtype=np.float32)
    ids = ["twin-1", "twin-2", "twin-3", "twin-4", "twin-5", "survivor", "unrelated"]
    meta = [("retail", f"Twin {n}", "duplicate") for n in range(5)]
    meta += [("retail", "Survivor", "submitted"), ("retail", "Other", "submitted")]
    found = top_matches(scores, ids, meta, own_id=None, limit=3, threshold=0.5)
    assert [d.idea_id for d in found] == ["survivor"]
