"""`clipxai report`: one self-contained HTML file (no external reference) and a Markdown twin."""

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run

from clipxai.analysis.check import synthetic
from clipxai.cli.commands import main

PROMPT = '<script>alert("x")</script> & ❤️'
URL_ATTRS = {"src", "href", "srcset", "poster", "data", "action", "background", "formaction", "xlink:href"}


class Scan(HTMLParser):
    """Every URL-bearing attribute, every tag, and the text, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags, self.text, self.styles = [], [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRS and value is not None:
                self.urls.append(value)
            if name == "style" and value:
                self.styles.append(value)

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(2)
    a = write_run(root, "heart", traj=synthetic.planted_states(rng, n=150, k=3, dim=64, mean_dwell=12, noise=0.4),
                  prompt=PROMPT)
    b = write_run(root, "heart-seed1", traj=synthetic.planted_states(rng, n=120, k=2, dim=64, mean_dwell=12,
                                                                      noise=0.4), prompt=PROMPT, seed=1)
    out = root / "out" / "report.html"
    assert main(["report", str(a), str(b), "-o", str(out), "--no-labels", "-q"]) == 0
    scan = Scan()
    scan.feed(out.read_text(encoding="utf-8"))
    return out, scan, (a, b)


def test_html_references_nothing_outside_itself(report):
    out, scan, _ = report
    assert scan.urls, "the report should contain embedded figures"
    external = [u for u in scan.urls if not u.startswith(("data:", "#"))]
    assert external == []
    css_urls = re.findall(r"url\(([^)]*)\)", " ".join(scan.styles))
    assert [u for u in css_urls if not u.strip("'\" ").startswith("data:")] == []
    assert "link" not in scan.tags and "iframe" not in scan.tags


def test_prompt_text_is_escaped(report):
    out, scan, _ = report
    assert "script" not in scan.tags  # the prompt's <script> stays text
    assert any(PROMPT in t for t in scan.text)
    assert PROMPT not in out.read_text(encoding="utf-8")  # only its escaped form is in the file


def test_report_holds_verdicts_states_and_figures(report):
    out, scan, (a, b) = report
    text = " ".join(scan.text)
    for run in (a, b):
        assert f"({run.name}):" in text and f"run-{run.name}" in out.read_text(encoding="utf-8")
    assert "Run heart" not in text  # the runs are named by what tells them apart (their seed)
    assert "All runs together" in text and "switch rate per 100 steps" in text
    # the states' verdict and the per-step dynamics are both stated, for every run, in words
    assert text.count("States in the snapshots:") == 2 and text.count("Per-step dynamics:") == 2
    assert "per step" in text and "not cycling" in text
    assert sum(1 for u in scan.urls if u.startswith("data:image/png")) >= 20
    assert any(u.startswith("data:image/gif") for u in scan.urls)  # the animation


def _between(html: str, start: str, end: str) -> str:
    return html[html.index(start):html.index(end, html.index(start))]


def test_report_opens_with_what_was_found_then_contents(report):
    out, scan, (a, b) = report
    html = out.read_text(encoding="utf-8")
    found = html.index('id="what-we-found"')
    assert found < html.index("<table") and found < html.index('<nav class="toc"') < html.index("<table")
    findings = _between(html, '<ul class="findings">', "</ul>")
    assert findings.count("<li>") == 2
    assert "<strong>seed 0</strong>" in findings and "<strong>seed 1</strong>" in findings
    assert "_" not in re.sub(r"<[^>]+>", "", findings)  # no snake_case verdict codes in the plain words
    assert "its similarity" in findings  # the per-step dynamics, beside where the snapshots went
    # the final image of every run and the strip of where each went come before any table
    gallery = _between(html, '<div class="gallery">', "</div>")
    assert gallery.count("<img") == 2 and html.index("gallery") < html.index("<table")
    for run in (a, b):
        last = json.loads((run / "analysis" / "summary.json").read_text(encoding="utf-8"))["steps"][-1]
        assert f"last snapshot (step {last}; no final image)" in gallery   # these runs wrote no final.png
    assert html.index('alt="Where each run went') < html.index("<table")
    # every entry of the contents leads to a heading of the page
    toc = _between(html, '<nav class="toc">', "</nav>")
    targets = re.findall(r'href="#([^"]+)"', toc)
    assert len(targets) >= 5 and all(f'id="{t}"' in html for t in targets)


def test_configuration_shown_once_folded_and_definitions_embedded(report):
    out, scan, _ = report
    html = out.read_text(encoding="utf-8")
    assert html.count("<summary>Configuration shared by all runs") == 1
    assert html.count("<summary>Environment shared by all runs") == 1
    assert "<summary>Configuration: what differs between the runs</summary>" in html  # the seed
    assert "docs/analysis.md" not in html  # the reader has only this file
    definitions = _between(html, 'id="how-to-read-the-numbers"', "</dl>")
    for term in ("Switch rate", "Silhouette", "Jump ratio", "Drift", "Per-step dynamics", "Verdict on the states"):
        assert f"<dt>{term}</dt>" in definitions


def test_every_number_of_the_summary_is_still_in_the_report(report):
    out, scan, (a, b) = report
    text = " ".join(scan.text)
    for run in (a, b):
        s = json.loads((run / "analysis" / "summary.json").read_text(encoding="utf-8"))
        rate = s["switch_rate_per_100_steps"]
        assert f"{rate['value']:.3g} ({rate['ci95'][0]:.3g}-{rate['ci95'][1]:.3g})" in text
        assert f"{s['switches']} ({s['returns']})" in text
        assert s["verdict_reason"] in text and s["dynamics"]["reason"] in text
        dw = s["dwell_steps_all"]
        assert f"{dw['median']:.4g} ({dw['iqr']:.4g})" in text
        for d in s["dwell_steps"].values():
            assert f"{d['median']:.4g} ({d['iqr']:.4g})" in text


def test_a_chart_with_nothing_to_show_is_replaced_by_a_line(tmp_path):
    run = write_run(tmp_path, "still", traj=synthetic.single_state(np.random.default_rng(0), n=40, dim=64, noise=0.3))
    out = tmp_path / "one.html"
    assert main(["report", str(run), "-o", str(out), "--no-labels", "-q"]) == 0
    s = json.loads((run / "analysis" / "summary.json").read_text(encoding="utf-8"))
    assert s["n_states"] == 1
    for name in ("states", "transitions", "switch_rate_windows", "dwell_survival"):
        assert name not in s["figures"] and s["figures_skipped"][name] == "the run stays in one state"
    html = out.read_text(encoding="utf-8")
    line = re.search(r"Not drawn, having nothing to show: [^<]*", html).group(0)
    assert "the state over steps" in line and "the transitions" in line and "(the run stays in one state)" in line
    assert "Which state follows which" not in html and "1 states" not in html and "1 switches" not in html


def test_markdown_twin_links_existing_figures(report):
    out, _, (a, _b) = report
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 20
    for link in links:
        assert not link.startswith(("http:", "https:", "/"))
        assert (out.parent / link).is_file(), link
    assert "&lt;script&gt;" in md  # the prompt cannot become markup in the Markdown either


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


LAYOUT = """() => {
  const body = document.body, box = body.getBoundingClientRect();
  const left = box.left + parseFloat(getComputedStyle(body).paddingLeft);
  const right = box.right - parseFloat(getComputedStyle(body).paddingRight);
  const out = [...body.querySelectorAll('*')].filter(e => {
    if (e.closest('details:not([open])')) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && (r.right > right + 1 || r.left < left - 1);
  }).map(e => e.tagName + ' ' + (e.className || '') + ' ' + Math.round(e.getBoundingClientRect().right));
  const images = [...document.images];
  const small = [...body.querySelectorAll('p,li,td,th,figcaption,dd,dt,summary,a,strong')]
    .filter(e => e.textContent.trim() && parseFloat(getComputedStyle(e).fontSize) < 10).length;
  const found = document.getElementById('what-we-found').getBoundingClientRect().top;
  const table = document.querySelector('table').getBoundingClientRect().top;
  return {overflow: out, height: body.scrollHeight, images: images.length, small,
          decoded: images.every(i => i.complete && i.naturalWidth > 0), foundFirst: found < table,
          figureWidths: [...document.querySelectorAll('figure.full img')].filter(i => !i.closest('details'))
                          .map(i => i.getBoundingClientRect().width),
          column: right - left};
}"""


@pytest.mark.skipif(_chromium() is None or _playwright() is None,
                    reason="Chromium (apt-get install -y chromium) and Python Playwright are needed to render the "
                           "report in a real browser")
def test_report_renders_offline_in_a_headless_browser(report, tmp_path):
    out, _, _ = report
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            layout = page.evaluate(LAYOUT)
            shot = tmp_path / "shot.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # nothing fetched
    assert layout["decoded"] and layout["images"] >= 10
    assert layout["overflow"] == []  # nothing spills out of the content column, tables included
    assert layout["foundFirst"]  # "What we found" comes before the first table
    assert layout["small"] == 0  # no text under 10 px
    assert layout["figureWidths"] and min(layout["figureWidths"]) >= layout["column"] - 1  # full column width
    from PIL import Image
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB").resize((200, 140))).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # text, pictures and a table, not a blank page


def test_report_of_a_missing_run_is_one_sentence(tmp_path, capsys):
    rc = main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_report_reuses_an_existing_analysis(report, tmp_path):
    _, _, (a, _b) = report
    summary = a / "analysis" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    assert main(["report", str(a), "-o", str(tmp_path / "one.html"), "--no-labels", "-q"]) == 0
    assert summary.stat().st_mtime_ns == stamp
    assert Path(tmp_path / "one.md").is_file()


def test_runs_whose_folders_share_a_name_keep_their_own_numbers_and_links(report, tmp_path):
    # the module's two analysed runs (seeds 0 and 1, 3 and 2 planted states), copied into folders of one name
    _, _, runs = report
    a, b = (shutil.copytree(run, tmp_path / parent / "heart") for run, parent in zip(runs, ("first", "second")))
    assert _states(a) != _states(b)   # a row showing the other run's number would be seen
    out = tmp_path / "report.html"
    assert main(["report", str(a), str(b), "-o", str(out), "--no-labels", "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    targets = re.findall(r'href="#([^"]+)"', _between(html, '<nav class="toc">', "</nav>"))
    assert len(set(targets)) == len(targets) and all(f'id="{t}"' in html for t in targets)
    section = [t for t in targets if t.startswith("run-")]
    assert len(section) == 2
    table = _between(html, 'id="all-runs-together"', "</table>")
    for run, label in ((a, "seed 0"), (b, "seed 1")):
        states = _states(run)
        row = re.search(rf"<tr><td>{label}</td>(.*?)</tr>", table, re.S).group(1)
        cells = re.findall(r"<td>(.*?)</td>", row)
        assert cells[1] == str(states)


def _states(run: Path) -> int:
    return json.loads((run / "analysis" / "summary.json").read_text(encoding="utf-8"))["n_states"]


def test_every_table_and_figure_says_what_it_shows(report):
    out, scan, _ = report
    html = out.read_text(encoding="utf-8")
    tables = re.findall(r"<table>(.*?)</table>", html, flags=re.S)
    assert tables and all(re.search(r"<caption>[^<]{20,}", t) for t in tables)
    figures = re.findall(r"<figure[^>]*>(.*?)</figure>", html, flags=re.S)
    assert figures and all("<figcaption>" in f for f in figures)


def test_the_gallery_shows_the_runs_final_image_not_its_last_snapshot(report, tmp_path):
    from PIL import Image

    run = shutil.copytree(report[2][1], tmp_path / "done")   # an analysed run of the module, now with a final.png
    Image.new("RGB", (16, 16), (250, 10, 10)).save(run / "final.png")
    out = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(out), "--no-labels", "-q"]) == 0
    gallery = _between(out.read_text(encoding="utf-8"), '<div class="gallery">', "</div>")
    assert "final image (after step" in gallery and "no final image" not in gallery
    import base64
    import io

    data = re.search(r'src="data:image/png;base64,([^"]+)"', gallery).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB").getpixel((5, 5)) == (250, 10, 10)


def test_parameter_cells_read_as_text():
    from clipxai.report.report import readable

    assert readable({"name": "pixels", "options": {"sigma": 0.1, "init_tint": [0.2, 0.5]}}) == \
        "pixels (sigma 0.1, init_tint 0.2, 0.5)"
    assert readable({"name": "fourier", "options": {}}) == "fourier" and readable(None) == "n/a"


def test_charts_are_drawn_at_twice_the_pixels_they_are_shown_at(report):
    """Crisp text on high-density screens: a full-width chart has >= 2x the column's 1100 CSS px, a
    half-width one >= 2x half of it."""
    from PIL import Image

    from clipxai.report.sections import FIGURES

    _, _, (a, _) = report
    summary = json.loads((a / "analysis" / "summary.json").read_text(encoding="utf-8"))
    checked = 0
    for name, _, size in FIGURES:
        file = summary["figures"].get(name)
        if size in ("full", "half") and file and file.endswith(".png"):
            width = Image.open(a / "analysis" / file).size[0]
            assert width >= (2200 if size == "full" else 1100), (name, width)   # 2 x 1100 px, 2 x 550
            checked += 1
    assert checked >= 4
