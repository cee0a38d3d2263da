"""Likely duplicates: precision@3 and recall@3 of the ideas service's index on a hand-labelled set.

For each idea that has at least one labelled duplicate, the index (holding every other idea
of the set) suggests up to 3 ideas above its similarity threshold, as the service does on
submission. precision@3 is the share of those suggestions that are labelled duplicates,
averaged over the ideas that got any; recall@3 is the share of each idea's labelled duplicates
that were suggested. Unlabelled pairs count as wrong suggestions.

The main figures are the service's own method (sentence embeddings at DUPLICATE_THRESHOLD);
`baseline_char_ngrams_*` are the character n-gram index it used before, from the same run.

The threshold was chosen on this same set, so the main figures are in-sample. The
`held_out_*` figures are honest about that: the set's topic clusters (linked by their labelled
pairs) are split into folds, each fold's ideas are judged at the threshold that did best
(F1 of precision@3 and recall@3) on the other folds, and the judgements are pooled.

`encode_ideas_per_s` is the model's rate on this machine with the service's settings (one
torch thread, batches of 32), `encode_one_idea_ms` the latency of one submission's encoding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import mean, median
from typing import Any

from bench.common import record_results
from centricity_contracts.ideas import LikelyDuplicate
from centricity_ideas.similarity import (
    DUPLICATE_THRESHOLD,
    SENTENCE_ENCODER,
    CharNgramIndex,
    SemanticIndex,
    SimilarityIndex,
    embedding_text,
)

DATASET = Path(__file__).resolve().parents[1] / "services" / "ideas" / "bench" / "duplicate_pairs.json"
FOLDS = 5
THRESHOLDS = [round(0.30 + 0.01 * step, 2) for step in range(51)]

Idea = dict[str, Any]
Suggest = Callable[[str], list[LikelyDuplicate]]


def labelled_duplicates(dataset: dict[str, Any]) -> dict[str, set[str]]:
    duplicates: dict[str, set[str]] = {}
    for pair in dataset["pairs"]:
        if pair["duplicate"]:
            duplicates.setdefault(str(pair["a"]), set()).add(str(pair["b"]))
            duplicates.setdefault(str(pair["b"]), set()).add(str(pair["a"]))
    return duplicates


def topic_clusters(dataset: dict[str, Any]) -> dict[str, str]:
    """Each paired idea's cluster (its smallest id), from every labelled pair: same topic."""
    parent: dict[str, str] = {}

    def root(idea: str) -> str:
        while parent.setdefault(idea, idea) != idea:
            idea = parent[idea]
        return idea

    for pair in dataset["pairs"]:
        a, b = root(str(pair["a"])), root(str(pair["b"]))
        parent[max(a, b)] = min(a, b)
    return {idea: root(idea) for idea in parent}


def scores(
    suggestions: dict[str, list[LikelyDuplicate]], truth: dict[str, set[str]], threshold: float
) -> tuple[list[float], list[float]]:
    """Per query: precision@3 (queries with suggestions only) and recall@3 at a threshold."""
    precisions, recalls = [], []
    for query, expected in truth.items():
        found = [s.idea_id for s in suggestions[query] if s.similarity >= threshold]
        if found:
            precisions.append(sum(f in expected for f in found) / len(found))
        recalls.append(len(set(found) & expected) / len(expected))
    return precisions, recalls


def f1(precisions: Sequence[float], recalls: Sequence[float]) -> float:
    p, r = (mean(precisions) if precisions else 0.0), mean(recalls)
    return 2 * p * r / (p + r) if p + r else 0.0


def figures(
    suggestions: dict[str, list[LikelyDuplicate]], truth: dict[str, set[str]], threshold: float
) -> dict[str, float]:
    precisions, recalls = scores(suggestions, truth, threshold)
    return {
        "precision_at_3": round(mean(precisions), 3),
        "recall_at_3": round(mean(recalls), 3),
        "queries_with_suggestions": len(precisions),
    }


def suggest_all(
    ideas: dict[str, Idea], queries: Sequence[str], index: SimilarityIndex | CharNgramIndex | SemanticIndex
) -> dict[str, list[LikelyDuplicate]]:
    index.add(
        [
            (i, str(d["businessunit"]), str(d["title"]), str(d["description"]), "submitted")
            for i, d in ideas.items()
        ]
    )
    found = index.similar(
        [(str(ideas[q]["title"]), str(ideas[q]["description"])) for q in queries],
        limit=3,
        exclude=list(queries),
    )
    return dict(zip(queries, found, strict=True))


def held_out(
    unfiltered: dict[str, list[LikelyDuplicate]], truth: dict[str, set[str]], clusters: dict[str, str]
) -> dict[str, Any]:
    """Each fold judged at the threshold tuned on the other folds; judgements pooled."""
    roots = sorted(set(clusters[q] for q in truth))
    fold_of = {root: n % FOLDS for n, root in enumerate(roots)}
    precisions, recalls, chosen = [], [], []
    for fold in range(FOLDS):
        tuning = {q: t for q, t in truth.items() if fold_of[clusters[q]] != fold}
        testing = {q: t for q, t in truth.items() if fold_of[clusters[q]] == fold}
        best = max(THRESHOLDS, key=lambda th: f1(*scores(unfiltered, tuning, th)))
        chosen.append(best)
        p, r = scores(unfiltered, testing, best)
        precisions += p
        recalls += r
    return {
        "held_out_precision_at_3": round(mean(precisions), 3),
        "held_out_recall_at_3": round(mean(recalls), 3),
        "held_out_thresholds": chosen,
    }


def encoding_rate(texts: list[str]) -> dict[str, float]:
    SENTENCE_ENCODER.encode(texts[:32])  # warm up
    started = time.perf_counter()
    SENTENCE_ENCODER.encode(texts)
    rate = len(texts) / (time.perf_counter() - started)
    single = []
    for text in texts[:50]:
        started = time.perf_counter()
        SENTENCE_ENCODER.encode([text])
        single.append(time.perf_counter() - started)
    return {"encode_ideas_per_s": round(rate, 1), "encode_one_idea_ms": round(1000 * median(single), 1)}


def evaluate(dataset: dict[str, Any]) -> dict[str, Any]:
    ideas: dict[str, Idea] = {str(i["id"]): i for i in dataset["ideas"]}
    truth = labelled_duplicates(dataset)
    queries = sorted(truth)
    started = time.perf_counter()
    SENTENCE_ENCODER.wait_loaded()
    load_s = time.perf_counter() - started

    semantic = figures(suggest_all(ideas, queries, SimilarityIndex()), truth, DUPLICATE_THRESHOLD)
    baseline_index = CharNgramIndex()
    baseline = figures(suggest_all(ideas, queries, baseline_index), truth, baseline_index.min_similarity)
    # Every top 3 with its score, whatever the threshold, for the sweep and the held-out figures.
    unfiltered = suggest_all(ideas, queries, SemanticIndex(min_similarity=-1.0))
    sweep = {f"{th:.2f}": f1(*scores(unfiltered, truth, th)) for th in THRESHOLDS}
    best = max(sweep, key=lambda th: sweep[th])
    return {
        **semantic,
        "method": "all-MiniLM-L6-v2 sentence embeddings, cosine",
        "threshold": DUPLICATE_THRESHOLD,
        "f1_at_threshold": round(sweep[f"{DUPLICATE_THRESHOLD:.2f}"], 3),
        "best_in_sample_threshold": float(best),
        "best_in_sample_f1": round(sweep[best], 3),
        **held_out(unfiltered, truth, topic_clusters(dataset)),
        **{f"baseline_char_ngrams_{key}": value for key, value in baseline.items()},
        "baseline_char_ngrams_threshold": baseline_index.min_similarity,
        **encoding_rate([embedding_text(str(i["title"]), str(i["description"])) for i in ideas.values()]),
        "model_load_s": round(load_s, 2),
        "queries": len(truth),
        "labelled_pairs": len(dataset["pairs"]),
    }


def main() -> None:
    record_results("duplicates", evaluate(json.loads(DATASET.read_text())))


if __name__ == "__main__":
    main()
