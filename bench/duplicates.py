"""Likely duplicates: precision@3 of the ideas service's similarity index on a hand-labelled set.

For each idea that has at least one labelled duplicate, the index (holding every other idea
of the set) suggests up to 3 ideas above its similarity threshold, as the service does on
submission. precision@3 is the share of those suggestions that are labelled duplicates,
averaged over the ideas that got any; recall@3 is the share of each idea's labelled duplicates
that were suggested. Unlabelled pairs count as wrong suggestions.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from bench.common import record_results
from centricity_ideas.store import SimilarityIndex

DATASET = Path(__file__).resolve().parents[1] / "services" / "ideas" / "bench" / "duplicate_pairs.json"


def evaluate(dataset: dict[str, list[dict[str, object]]]) -> dict[str, float]:
    ideas = {str(i["id"]): i for i in dataset["ideas"]}
    duplicates: dict[str, set[str]] = {}
    for pair in dataset["pairs"]:
        if pair["duplicate"]:
            duplicates.setdefault(str(pair["a"]), set()).add(str(pair["b"]))
            duplicates.setdefault(str(pair["b"]), set()).add(str(pair["a"]))
    index = SimilarityIndex()
    index.add(
        [
            (i, str(d["businessunit"]), str(d["title"]), str(d["description"]), "submitted")
            for i, d in ideas.items()
        ]
    )
    precisions, recalls = [], []
    for query, truth in duplicates.items():
        (suggested,) = index.similar(
            [(str(ideas[query]["title"]), str(ideas[query]["description"]))], limit=3, exclude=[query]
        )
        found = [s.idea_id for s in suggested]
        if found:
            precisions.append(sum(f in truth for f in found) / len(found))
        recalls.append(len(set(found) & truth) / len(truth))
    return {
        "precision_at_3": round(mean(precisions), 3),
        "recall_at_3": round(mean(recalls), 3),
        "queries": len(duplicates),
        "queries_with_suggestions": len(precisions),
        "labelled_pairs": len(dataset["pairs"]),
    }


def main() -> None:
    record_results("duplicates", evaluate(json.loads(DATASET.read_text())))


if __name__ == "__main__":
    main()
