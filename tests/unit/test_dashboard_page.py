"""The dashboard's page as the server renders it (#18): its figures are in the first HTML, as the
script formats them, and nothing a customer wrote can end its embedded snapshot early."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from centricity_contracts.insights import IdeaInsight, UnitInsight
from centricity_insights.dashboard import Snapshot, pct, render
from centricity_insights.projection import unit_of_document

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def unit(**counters: object) -> UnitInsight:
    """A business unit as the store holds it: counters, from which its ratios follow."""
    return unit_of_document({"_id": "businessunit:retail", "title": "Retail banking", **counters})


def idea(title: str) -> IdeaInsight:
    return IdeaInsight.model_validate(
        {
            "idea_id": "i-1",
            "businessunit": "retail",
            "title": title,
            "up": 3,
            "down": 1,
            "voters": 4,
            "score": 2,
            "wilson_lower_bound": 0.3,
            "revision": 4,
            "updated_at": NOW,
            "weighted_score": 2.0,
        }
    )


def value_of(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert found, element_id
    return found.group(1)


def test_the_first_html_has_the_figures() -> None:
    # Coverage 1/8 = 12.5 %, cross-BU engagement 2/3.
    retail = unit(ideas=1234, votes=7, participants=5, weighted_demand=8.0, covered_demand=1.0)
    retail = retail.model_copy(update={"cross_bu_share": 2 / 3})
    page = render(
        Snapshot("businessunit:retail", "businessunit=retail", [retail], [idea("Dark mode")], [], NOW)
    )
    assert (value_of(page, "kpi-ideas"), value_of(page, "kpi-votes")) == ("1,234", "7")
    assert value_of(page, "kpi-coverage") == "13 %", "half up, as Math.round"
    assert '<span class="figure">67 %</span><span class="what">cross-BU</span>' in page
    assert '<div class="num">+2</div>' in page
    assert '<a href="?businessunit=retail" class="on">Retail banking</a>' in page
    assert "connecting" not in page
    assert "as of 09:30 UTC" in page


def test_nothing_written_by_a_customer_ends_the_snapshot_early() -> None:
    title = "</script><script>alert(1)</script><!--"
    page = render(Snapshot("enterprise", "", [unit()], [idea(title)], [], NOW))
    embedded = page.split('<script id="initial" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["ideas"][0]["title"] == title
    assert "<script>alert" not in page


def test_percentages_round_half_up() -> None:
    assert [pct(0.125), pct(0.135), pct(None)] == ["13 %", "14 %", "\N{EN DASH}"]


def test_a_scoped_view_says_its_unit_bars_are_the_whole_enterprise() -> None:
    retail = unit(ideas=3, votes=7, participants=5, weighted_demand=8.0, covered_demand=1.0)
    scoped = render(Snapshot("businessunit:retail", "businessunit=retail", [retail], [], [], NOW))
    whole = render(Snapshot("enterprise", "", [retail], [], [], NOW))
    assert "across the whole enterprise" in scoped
    assert "across the whole enterprise" not in whole
