"""Small server-rendered pages that customers reach from a mail, without signing in."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

from fastapi.responses import HTMLResponse

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "button{font-size:1.05em;padding:.5em 1.2em;margin-right:.5em}"
    "textarea{width:100%;box-sizing:border-box;min-height:5em;font:inherit}"
    "fieldset{border:1px solid #ccc;border-radius:.4em;margin:1em 0}"
    ".note{color:#555}"
)


def simple_page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    """A page with a heading; `body` is HTML its caller escaped."""
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status_code,
    )


def form_fields(body: bytes) -> dict[str, str]:
    """The fields of an application/x-www-form-urlencoded body, the last value of each."""
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[-1] for name, values in parsed.items()}


def page_or_problem(description: str, *, schema: str = "Problem") -> dict[str, Any]:
    """An error documented as both its answers: a page for a person who followed a link or sent
    its form, and problem+json for a program."""
    return {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/problem+json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
        },
    }
