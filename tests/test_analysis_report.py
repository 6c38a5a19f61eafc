"""`clipxai report`: one self-contained HTML file (no external reference) and a Markdown twin."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from clipxai.analysis import synthetic
from clipxai.cli import main
from helpers_runs import write_run

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
        assert f"Run {run.name}" in text
    assert "All runs together" in text and "switch rate per 100 steps" in text
    assert "Configuration" in text and "Environment" in text
    # the states' verdict and the per-step dynamics are both stated, for every run
    assert text.count("States in the snapshots:") == 2 and text.count("Per-step dynamics:") == 2
    assert "per step: not cycling" in text and "per_step" in text
    assert sum(1 for u in scan.urls if u.startswith("data:image/png")) >= 20
    assert any(u.startswith("data:image/gif") for u in scan.urls)  # the animation


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


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install -y chromium); "
                                                 "the offline-rendering check needs a real browser")
def test_report_renders_offline_in_a_headless_browser(report, tmp_path):
    out, _, _ = report
    html = out.read_text(encoding="utf-8")
    # A probe copy: a script (allowed only here) records whether every image decoded. The CSP still
    # forbids any network fetch, so a figure that needed one would fail to load.
    probe = html.replace("style-src 'unsafe-inline'\"", "style-src 'unsafe-inline'; script-src 'unsafe-inline'\"")
    probe = probe.replace("</body>", "<script>addEventListener('load',()=>{const i=[...document.images];"
                          "document.body.dataset.images=i.length;document.body.dataset.ok="
                          "i.every(x=>x.complete&&x.naturalWidth>0)});</script></body>")
    page = tmp_path / "probe.html"
    page.write_text(probe, encoding="utf-8")
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run([*flags, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ok="true"' in body
    assert int(re.search(r'data-images="(\d+)"', body).group(1)) >= 20
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1000,1400", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB").resize((200, 280))).reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    assert colours > 50  # text, tables and figures, not a blank page


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
