"""The viewer's pages in a real headless Chromium (Playwright driving the system's browser).

Runs are made by the real engine on the tiny random CLIP (one analysed, so its states,
words and verdict show). ``CLIPXAI_SCREENSHOTS=1`` uses the bundled toy CLIP instead and
saves the pictures of docs/viewer.md into docs/images/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette.testclient", reason="the viewer needs starlette (pip install -e '.[view]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="the page tests need playwright (pip install playwright)")

from helpers_runs import write_run  # noqa: E402
from helpers_view import CHROMIUM_ARGS, NO_CHROMIUM, chromium, make_run  # noqa: E402

from clipxai.cli.view import serving  # noqa: E402
from clipxai.runs.load import load_run  # noqa: E402
from clipxai.util.words import SINGLE_STATE_DRIFT, VERDICT_WORDS  # noqa: E402
from clipxai.view import create_app  # noqa: E402

SCREENSHOTS = os.environ.get("CLIPXAI_SCREENSHOTS") == "1"
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
MODEL = "toy" if SCREENSHOTS else "random:tiny"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> heart"
WORDS = ["heart", "love", "mouth", "ring", "hands", "rose", "text", "red"]

needs_chromium = pytest.mark.skipif(chromium() is None, reason=NO_CHROMIUM)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """An analysed run ``heart`` and a run ``other`` whose prompt is markup."""
    from clipxai.analysis import AnalyzeOptions, analyze_run

    root = tmp_path_factory.mktemp("viewer-runs")
    heart = make_run(root, "heart", "❤️" if SCREENSHOTS else "a red heart", model=MODEL,
                     steps=90 if SCREENSHOTS else 60, snapshot_every=3 if SCREENSHOTS else 2)
    words = root.parent / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    analyze_run(heart, AnalyzeOptions(projections=("pca",), gif=False, n_boot=50, n_surrogates=19,
                                      vocab_file=None if SCREENSHOTS else str(words), vocab_only=not SCREENSHOTS))
    make_run(root, "other", HOSTILE, model=MODEL, steps=40, snapshot_every=2, seed=1)
    return root


@pytest.fixture(scope="module")
def site(root):
    with serving(create_app(root)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if chromium() is None:
        pytest.skip(NO_CHROMIUM)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    page.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"viewer-{name}.png"))


def wait_js(page, expression: str, timeout: float = 30.0) -> None:
    """Wait until ``expression`` is true in the page (page.wait_for_function would need 'unsafe-eval' under the CSP)."""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        assert time.time() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def set_slider(page, value: int) -> None:
    page.eval_on_selector("#slider", "(s, v) => { s.value = String(v); s.dispatchEvent(new Event('input')); }", value)


@needs_chromium
def test_runs_page_lists_the_runs(page, site):
    page.goto(site + "/")
    rows = page.locator("#runs tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    prompts = sorted(page.locator("td.prompt a").all_text_contents())
    assert HOSTILE in prompts                           # shown as the text it is
    assert page.title() != "pwned" and page.locator('img[src="x"]').count() == 0
    assert page.locator("#runs img.thumb").count() == 2
    wait_js(page, "[...document.querySelectorAll('#runs img.thumb')].every(i => i.naturalWidth > 0)")
    verdict = page.locator('tr[data-id="heart"] td').nth(7).text_content()
    # the viewer speaks the one vocabulary (util/words.py), a cycling note possibly after it
    assert verdict.startswith(tuple(VERDICT_WORDS.values()) + (SINGLE_STATE_DRIFT,)), verdict
    shot(page, "runs")
    page.fill("#filter", "onerror")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == "other"
    page.fill("#filter", "")
    page.select_option("#sort", "prompt-asc")
    first = rows.first.get_attribute("data-id")
    page.click('th[data-sort="prompt"]')                # a second sort on the same column reverses it
    assert page.input_value("#sort") == "prompt-desc" and rows.first.get_attribute("data-id") != first
    for box in page.locator("#runs input[type=checkbox]").all():
        box.check()
    page.click("#compare")
    page.wait_for_url(re.compile(r"/compare\?id="))


@needs_chromium
def test_run_page_shows_frame_k_after_the_slider_moves(page, site, root):
    n = load_run(root / "heart").n
    page.goto(site + "/run?id=heart")
    page.wait_for_selector(f'#frame[data-index="{n - 1}"]')      # opens on the last snapshot
    before = page.locator("#frame").screenshot()
    k = 7
    set_slider(page, k)
    page.wait_for_selector(f'#frame[data-index="{k}"]')
    after = page.locator("#frame").screenshot()
    assert after != before
    shown = page.request.get(page.eval_on_selector("#frame", "i => i.src")).body()
    assert shown == page.request.get(f"{site}/api/frame?id=heart&i={k}").body()
    assert shown != page.request.get(f"{site}/api/frame?id=heart&i={n - 1}").body()
    assert page.text_content("#caption").startswith(f"snapshot {k + 1} of {n}")
    page.locator("#prev").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f'#frame[data-index="{k + 1}"]')
    page.keyboard.press("Home")
    page.wait_for_selector('#frame[data-index="0"]')
    page.click("#play")
    wait_js(page, "Number(document.querySelector('#frame').dataset.index) >= 3")
    page.click("#play")
    # the analysis: verdict, state of this snapshot and its words, the timeline, the map with hover pictures
    assert page.text_content("#verdict").startswith("verdict: ")
    assert re.search(r"state \d", page.text_content("#state-words"))
    assert page.is_visible("#timeline") and page.is_visible("#projection")
    assert hover_finds_a_point(page)
    set_slider(page, n // 2)
    page.wait_for_selector(f'#frame[data-index="{n // 2}"]')
    page.mouse.move(0, 0)
    shot(page, "run")


@needs_chromium
def test_a_run_before_its_first_snapshot_shows_a_placeholder_and_asks_for_no_frame(page, site, root):
    write_run(root, "waiting", n=6, recorded=0, status="running")
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(site + "/run?id=waiting")
    wait_js(page, "!document.querySelector('#frame-wait').hidden")
    assert "Waiting for the first snapshot" in page.inner_text("#frame-wait")
    assert page.is_hidden("#frame") and failed == []


@needs_chromium
def test_the_per_step_block_is_a_sentence_and_a_table_of_only_what_has_a_value(page, site):
    page.goto(site + "/run?id=heart")
    wait_js(page, "document.querySelector('#dynamics h3') !== null")
    block = page.inner_text("#dynamics")
    keys = page.eval_on_selector_all("#dynamics th", "ths => ths.map(t => t.textContent)")
    values = page.eval_on_selector_all("#dynamics td", "tds => tds.map(t => t.textContent)")
    assert page.eval_on_selector("#dynamics p", "p => p.textContent").strip()
    assert keys and all("_" not in k for k in keys)
    assert "null" not in values and "undefined" not in values and "[object Object]" not in block


def hover_finds_a_point(page) -> bool:
    box = page.locator("#projection").bounding_box()
    for y in range(4, int(box["height"]), 6):
        for x in range(4, int(box["width"]), 6):
            page.mouse.move(box["x"] + x, box["y"] + y)
            if page.is_visible("#hover"):
                wait_js(page, "document.querySelector('#hover-img').naturalWidth > 0")
                return "snapshot" in page.text_content("#hover-text")
    return False


@needs_chromium
def test_compare_moves_every_run_on_one_scrubber(page, site):
    page.goto(site + "/compare?id=heart&id=other")
    panels = page.locator("#panels .panel img.frame")
    panels.nth(1).wait_for()
    wait_js(page, "[...document.querySelectorAll('.panel img.frame')].every(i => i.dataset.index)")
    set_slider(page, 0)
    wait_js(page, "[...document.querySelectorAll('.panel img.frame')].every(i => i.dataset.index === '0')")
    set_slider(page, 10)
    wait_js(page, "[...document.querySelectorAll('.panel img.frame')].every(i => i.dataset.index !== '0')")
    assert HOSTILE in page.text_content("#panels")
    shot(page, "compare")


def start_from_form(page, site, steps: int, picture: bool = False) -> str:
    page.goto(site + "/start")
    page.fill("#prompt", "a red heart")
    page.fill("#model", MODEL)
    page.select_option("#preset", "default")
    page.fill("#steps", str(steps))
    if picture:
        shot(page, "start")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/run\?id="))
    return re.search(r"id=([^&]+)", page.url).group(1)


def snapshots_shown(page) -> int:
    m = re.search(r"of (\d+)", page.text_content("#caption") or "")
    return int(m.group(1)) if m else 0


@needs_chromium
def test_a_run_started_from_the_form_grows_live_and_completes(page, site, root):
    steps = 300 if SCREENSHOTS else 600
    run_id = start_from_form(page, site, steps, picture=True)
    seen, shot_taken, deadline = [], False, time.time() + 240
    while time.time() < deadline:
        facts = page.text_content("#facts") or ""
        if "complete" in facts or "failed" in facts:
            break
        if page.is_visible("#live"):
            count = snapshots_shown(page)
            if count and (not seen or seen[-1] != count):
                seen.append(count)
            if count >= steps // 20 and not shot_taken:
                shot(page, "live")
                shot_taken = True
        time.sleep(0.1)
    assert "complete" in page.text_content("#facts"), page.text_content("#facts")
    assert len(seen) >= 3 and seen == sorted(seen), seen          # the open page grew with the run
    wait_js(page, f"document.querySelector('#caption').textContent.includes('of {steps // 10}')")
    run = load_run(root / run_id)
    assert run.status == "complete" and run.n == steps // 10 and run.manifest.get("steps_done") == steps
    assert (run.path / "final.png").is_file() and run.prompt == "a red heart"


@needs_chromium
def test_stop_ends_a_run_interrupted_and_resumable(page, site, root):
    run_id = start_from_form(page, site, 100000)
    wait_js(page, "/of \\d+/.test(document.querySelector('#caption').textContent)", timeout=120)
    page.click("#stop")
    wait_js(page, "document.querySelector('#facts').textContent.includes('interrupted')", timeout=60)
    run = load_run(root / run_id)
    assert run.status == "interrupted" and (run.path / "checkpoint.pt").is_file()
    deadline = time.time() + 60
    while page.request.get(f"{site}/api/run?id={run_id}").json()["job"]["returncode"] is None:
        assert time.time() < deadline
        time.sleep(0.2)
    assert page.request.get(f"{site}/api/run?id={run_id}").json()["job"]["returncode"] == 130


def test_the_report_names_the_viewer_command(root, tmp_path):
    from clipxai.report.report import write_report

    html, _ = write_report([root / "heart"], tmp_path / "report.html")
    assert f"clipxai view {root.resolve()}" in html.read_text(encoding="utf-8")
