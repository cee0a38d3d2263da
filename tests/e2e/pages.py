"""What every page a person reaches must hold to: axe-core finds no accessibility violation
(Deque's engine, through PyPI's axe-playwright-python), and it reads without sideways scrolling
on a phone (375 px) and on a desktop (1,400 px)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page

WIDTHS = (375, 1400)
_axe = Axe()


def sideways_overflow(page: Page) -> int:
    overflow: Any = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return int(overflow)


def assert_readable_by_everyone(page: Page, what: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        overflow = sideways_overflow(page)
        assert overflow <= 0, f"{what} scrolls sideways by {overflow} px at {width} px"
        results = _axe.run(page)
        assert results.violations_count == 0, f"{what} at {width} px:\n{results.generate_report()}"
