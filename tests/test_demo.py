"""`clipxai demo`: offline ascent, analysis and report, never overwriting an earlier demo."""

import json

from clipxai.cli import main


def test_demo_writes_a_report_and_keeps_earlier_results(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "40", "--seeds", "2", "--quiet"]) == 0
    report = out / "report.html"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(report)
    html = report.read_text(encoding="utf-8")
    assert "<img" in html and "data:image/png;base64," in html
    for seed in (0, 1):
        summary = json.loads((out / f"run-seed{seed}" / "analysis" / "summary.json").read_text())
        assert summary["n_snapshots"] == 8 and summary["verdict"]
        assert summary["run"]["model"] == "toy" and summary["labels"]["states"]
        run_json = json.loads((out / f"run-seed{seed}" / "run.json").read_text())
        assert run_json["config"]["param"]["options"]["tint"] == 0.2  # seeds start from their own hues
    before = report.read_bytes()
    assert main(["demo", "--out", str(out), "--steps", "20", "--seeds", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "demo-2" / "report.html")
    assert report.read_bytes() == before
