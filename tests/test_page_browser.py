"""The results page in a real browser: Debian's headless Chromium (``.ci/run`` installs it), driven
through Playwright's Python package (a well-kept client of the Chrome DevTools Protocol, pointed at
the system's ``/usr/bin/chromium`` instead of a browser download of its own). Opened from disk with
the network off, it must log no console error, draw every plot (one SVG per plot element), and
redraw when the Pareto x axis or a method filter changes. Skipped, saying why, without Chromium or
Playwright."""
import shutil
from pathlib import Path

import pytest

from hut import aggregate

FIX = Path(__file__).resolve().parent / "fixtures" / "records"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# the flags this sandbox needs (no sandboxing, no GPU) and none of Chromium's own network traffic
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    aggregate.build(aggregate.options([f"results_dir={FIX / 'runs'}", "tables=[1,3,4,5]", "flops=false",
                                       f"paper_file={FIX / 'paper_fixture.yaml'}", f"out_dir={out}"]),
                    log=lambda s: None)
    return out / "index.html"


def test_the_page_renders_offline_without_errors_and_its_controls_redraw(page_file):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # a fresh temporary profile each launch
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            errors, requests = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert errors == []
            assert [u for u in requests if not u.startswith("file://")] == []
            plots = page.locator("figure.plot").count()
            assert plots > 0 and page.locator("figure.plot > svg").count() == plots  # every plot drawn
            assert page.locator('svg[data-kind="strip"] circle.seed').count() > 0
            assert page.locator('svg[data-kind="scatter"]').count() > 0
            assert page.locator("section").first.get_attribute("id") == "claims"

            scatter = page.locator('figure[data-plot="pareto-table1-mrpc"] svg')
            before = (scatter.get_attribute("data-x"), scatter.locator("text.x-label").text_content())
            page.select_option("#pareto-x", "step_time")
            after = (scatter.get_attribute("data-x"), scatter.locator("text.x-label").text_content())
            assert before[0] == "params" and after[0] == "step_time" and after[1] != before[1]

            seeds = page.locator('svg[data-kind="strip"] circle.seed').count()
            page.uncheck('input.method-filter[value="lora"]')
            assert 0 < page.locator('svg[data-kind="strip"] circle.seed').count() < seeds
            assert errors == []
        finally:
            browser.close()
