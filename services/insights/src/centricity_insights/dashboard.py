"""The dashboard's page, rendered with its figures: the first paint already shows them, with or
without JavaScript. dashboard.js then draws the same from the snapshot embedded in the page, and
keeps it live over server-sent events.

The figures are formatted here as dashboard.js formats them (pct, num, duration, count), so the
page does not change when the script takes over.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from centricity_contracts.insights import IdeaInsight, UnitInsight, UnitKind
from centricity_insights.series import SeriesPoint

DASH = "\N{EN DASH}"
STATIC = Path(str(resources.files("centricity_insights") / "static"))
LEADERBOARD_SIZE = 10
TEMPLATES = Environment(
    loader=PackageLoader("centricity_insights", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Snapshot:
    """What one scope's page starts with."""

    unit: str
    query: str  # the scope's query string, "" for the enterprise: how scope links are told apart
    units: list[UnitInsight]
    ideas: list[IdeaInsight]
    series: list[SeriesPoint]
    at: datetime


def pct(value: float | None) -> str:
    # Half up, as JavaScript's Math.round does (Python's round() would make 0.125 "12 %").
    return DASH if value is None else f"{math.floor(value * 100 + 0.5)} %"


def num(value: float | None) -> str:
    return DASH if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{math.floor(seconds + 0.5)} s"
    if seconds < 5400:
        return f"{math.floor(seconds / 60 + 0.5)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def kpis(unit: UnitInsight | None) -> dict[str, str]:
    """The text of each figure, by element id; dashes only for what has no value yet."""
    if unit is None:
        return {}
    asked, answered = unit.attestation_requests, unit.attestation_answers
    reminders = count(unit.attestation_reminders, "reminder") if unit.attestation_reminders else ""
    return {
        "kpi-ideas": num(unit.ideas),
        "kpi-participants": num(unit.participants),
        "kpi-votes": num(unit.votes),
        "kpi-response": f"{duration(unit.first_response_median_s)} / {duration(unit.first_response_p90_s)}",
        "kpi-coverage": pct(unit.coverage),
        "kpi-delivery": pct(unit.delivery_rate),
        "kpi-helpfulness": pct(unit.helpfulness),
        "kpi-cross": pct(unit.cross_bu_share),
        "kpi-asked": num(asked),
        "kpi-reminders": reminders,
        "kpi-response-rate": pct(unit.response_rate),
        "kpi-answered": f"{num(answered)} of {num(asked)} answered" if asked else "",
        "kpi-answer-time": duration(unit.answer_time_median_s),
        "kpi-attested": f"{num(unit.helped)} of {num(unit.attested)} said yes" if unit.attested else "",
    }


def meters(unit: UnitInsight | None) -> dict[str, str]:
    """The width of each gauge's meter, by the suffix of its element id."""
    if unit is None:
        return {}
    return {
        "coverage": width(unit.coverage),
        "delivery": width(unit.delivery_rate),
        "helpfulness": width(unit.helpfulness),
        "cross": width(unit.cross_bu_share),
        "response-rate": width(unit.response_rate),
    }


def width(value: float | None) -> str:
    return f"{math.floor((value or 0) * 100 + 0.5)}%"


def leaderboard(ideas: list[IdeaInsight]) -> list[dict[str, Any]]:
    """The top ideas by score, as dashboard.js lists them first."""
    shown = [i for i in ideas if i.businessunit and not i.merged_into]
    shown.sort(key=lambda i: (-i.score, -i.wilson_lower_bound, i.idea_id))
    top = shown[:LEADERBOARD_SIZE]
    most = max([1, *(i.up + i.down for i in top)])
    return [
        {
            "idea": idea,
            "meta": " · ".join(
                [idea.businessunit or "", count(idea.voters, "voter"), count(idea.comments, "comment")]
            ),
            "status": idea.status.value.replace("_", " ", 1) if idea.status else None,
            "up": f"{100 * idea.up / most}%",
            "down": f"{100 * idea.down / most}%",
            "label": ("+" if idea.score > 0 else "") + str(idea.score),
        }
        for idea in top
    ]


def unit_rows(units: list[UnitInsight]) -> list[dict[str, Any]]:
    """Each business unit's bars, most demand first, each with its figure."""
    rows = sorted((u for u in units if u.kind is UnitKind.BUSINESSUNIT), key=lambda u: -u.weighted_demand)
    return [
        {
            "unit": u,
            "figures": [
                {"cls": cls, "label": label, "text": pct(value), "width": width(value)}
                for cls, value, label in (
                    ("coverage", u.coverage, "coverage"),
                    ("cross", u.cross_bu_share, "cross-BU"),
                    ("response", u.response_rate, "answered"),
                    ("helpfulness", u.helpfulness, "helped"),
                )
            ],
        }
        for u in rows
    ]


def scope_links(units: list[UnitInsight]) -> list[tuple[str, str]]:
    """Label and query of every scope: the enterprise, the business units, the campaigns."""

    def by_title(u: UnitInsight) -> str:
        return (u.title or u.name).casefold()

    businessunits = sorted((u for u in units if u.kind is UnitKind.BUSINESSUNIT), key=by_title)
    campaigns = sorted((u for u in units if u.kind is UnitKind.CAMPAIGN), key=by_title)
    return [
        ("Enterprise", ""),
        *((u.title or u.name, f"businessunit={quote(u.name, safe='')}") for u in businessunits),
        *((u.title or f"campaign {u.name[:8]}", f"campaign_id={quote(u.name, safe='')}") for u in campaigns),
    ]


def asset_version() -> str:
    """A digest of the page's scripts and styles: their URLs change with them, so a browser that
    kept an old copy (files are served with validators only) never runs it with a newer page."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


ASSET_VERSION = asset_version()


def embedded_json(value: Any) -> Markup:
    """JSON safe inside a <script> element: no "</script>" or comment can end it early."""
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render(snapshot: Snapshot) -> str:
    own = next((u for u in snapshot.units if u.unit == snapshot.unit), None)
    initial = {
        "units": [u.model_dump(mode="json") for u in snapshot.units],
        "ideas": [i.model_dump(mode="json") for i in snapshot.ideas],
        "series": [p.model_dump(mode="json") for p in snapshot.series],
    }
    return TEMPLATES.get_template("dashboard.html").render(
        kpis=kpis(own),
        meters=meters(own),
        dash=DASH,
        ideas=leaderboard(snapshot.ideas),
        unit_rows=unit_rows(snapshot.units),
        enterprise=snapshot.unit == "enterprise",
        scopes=scope_links(snapshot.units),
        query=snapshot.query,
        at=snapshot.at,
        initial=embedded_json(initial),
        version=ASSET_VERSION,
        unit=snapshot.unit,
    )
