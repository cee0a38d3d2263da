"""`make screenshot`: the dashboard of the system `make run` started, signed in, as a PNG.

Every read needs a signed-in person, the dashboard too, so a bare `chromium --headless
--screenshot <dashboard>` captures the sign-in page. This drives Debian's chromium with
Playwright instead: it signs in at the local provider as a development user (the analyst, who
sees every unit) and saves the page as it is at that moment, at a desktop's and a phone's width.

    python -m demo.screenshot [--user analyst] [--path "/dashboard?businessunit=retail"] [--out .local/shots]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

from centricity_plumbing.devusers import DEV_USERS
from centricity_plumbing.localinfra import LOOPBACK
from centricity_plumbing.localrun import DEFAULT_SERVICES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = (1400, 375)
WAIT_MS = 30_000


def take(base_url: str, path: str, user: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 1000})
            page.goto(base_url + path)
            # The local provider asks who is signing in; the enterprise's would ask for a password.
            page.locator(f'form[aria-labelledby="heading-auth-predefined"] button[value="{user}"]').click()
            page.wait_for_url(base_url + path, timeout=WAIT_MS)
            page.wait_for_timeout(1500)  # the live stream's first events, and the meters' transitions
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1000})
                shot = out / f"dashboard-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                shots.append(shot)
        finally:
            browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--user", default="analyst", choices=[u["sub"] for u in DEV_USERS])
    parser.add_argument("--path", default="/dashboard", help="the page, with its scope")
    parser.add_argument("--url", default=f"http://{LOOPBACK}:{DEFAULT_SERVICES['insights']}")
    parser.add_argument("--out", type=Path, default=Path(".local/shots"))
    args = parser.parse_args()
    for shot in take(args.url, args.path, args.user, args.out):
        print(f"saved {shot}")


if __name__ == "__main__":
    main()
