"""`clipxai demo`: both recipes offline, a report that opens with the finding, never overwriting an earlier demo."""

import json

from clipxai.cli.commands import main
from clipxai.toy.demo import lead_text


def test_demo_runs_both_recipes_and_opens_with_the_finding(tmp_path, capsys):
    # An earlier demo already holds --out: this one goes beside it (demo-2) and leaves it as it was.
    # (One demo instead of a second full demo into the same folder: the folder is chosen the same way.)
    earlier = tmp_path / "demo"
    (earlier / "default-seed0").mkdir(parents=True)
    (earlier / "report.html").write_bytes(b"<html>an earlier demo's report</html>")
    (earlier / "default-seed0" / "run.json").write_text('{"status": "complete"}')
    kept = {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    out = tmp_path / "demo-2"
    assert main(["demo", "--out", str(earlier), "--steps", "40", "--seeds", "2", "--quiet"]) == 0
    report = out / "report.html"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(report)
    html = report.read_text(encoding="utf-8")
    assert "<img" in html and "data:image/png;base64," in html

    cycling, drops = {}, {}
    for recipe in ("original", "default"):
        cycling[recipe], drops[recipe] = 0, []
        for seed in (0, 1):
            run_json = json.loads((out / f"{recipe}-seed{seed}" / "run.json").read_text())
            # the runs say what really ran: the toy model, two seeds batched, this seed
            assert run_json["config"]["model"] == "toy" and run_json["model"]["name"] == "toy"
            assert run_json["config"]["seeds"] == 2 and run_json["group"]["seeds"] == [0, 1]
            assert run_json["seed"] == seed
            summary = json.loads((out / f"{recipe}-seed{seed}" / "analysis" / "summary.json").read_text())
            assert summary["verdict"] and summary["labels"]["states"] and summary["dynamics"]["signal"] == "sim/❤️"
            cycling[recipe] += summary["dynamics"]["cycling"]
            drops[recipe].append(summary["dynamics"]["n_events"])
            if recipe == "original":
                assert run_json["config"]["preset"] == "zer0int" and run_json["param"]["clamp"] is False
                assert summary["n_snapshots"] == 4  # the preset's snapshots every 10 steps
            else:
                assert run_json["config"]["param"]["options"]["tint"] == 0.2  # seeds start from their own hues
                assert summary["n_snapshots"] == 8

    # The Markdown twin opens with the finding and its two pictures, before any table.
    md = (out / "report.md").read_text(encoding="utf-8")
    before_tables = md.split("\n| ", 1)[0]
    assert "What this demo found on the toy CLIP" in before_tables
    assert "finding/similarity.png" in before_tables and "finding/finals.png" in before_tables
    for recipe in ("original", "default"):
        lo, hi = min(drops[recipe]), max(drops[recipe])
        said = (f"under the {recipe} recipe the similarity to “❤️” drops suddenly {lo if lo == hi else f'{lo}-{hi}'} "
                f"times per run (the drop test calls that a cycle in {cycling[recipe] or 'none'} of 2 seeds)")
        assert said in before_tables  # the opening says what the summaries measured
    assert "independent judge" in before_tables and (out / "finding" / "finals.png").stat().st_size > 1000

    assert {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == kept


def _summary(cycling, drops, spacing=None, p=0.5, verdict="single_state", aliasing=False):
    return {"verdict": verdict, "switches": 0,
            "dynamics": {"cycling": cycling, "n_events": drops, "mean_spacing_steps": spacing, "p_value": p,
                         "snapshot_aliasing": aliasing, "snapshot_interval": 10.0}}


def _judged(seed, judge, pixels, low=0.0, high=1.0):
    return {"seed": seed, "judge": judge, "pixels": pixels, "agree": judge == pixels, "judge_changes_second_half": 0,
            "judge_similarity": 0.1, "pixel_range": [low, high]}


def test_the_opening_follows_the_numbers():
    level = {"final": 0.55, "late_mean": 0.55, "late_sd": 0.02}
    results = {
        "original": {"summaries": [_summary(True, 52, 10.2, 0.001, aliasing=True),
                                   _summary(True, 48, 12.6, 0.003, aliasing=True), _summary(False, 55, 9.4, 0.169)],
                     "levels": [level] * 3,
                     "judged": [_judged(0, "ring", None, -4, 6), _judged(1, "ring", "heart", -9, 8),
                                _judged(2, "ring", "ring", -1, 2)]},
        "default": {"summaries": [_summary(False, 2, 96.0, verdict="converging"), _summary(False, 0, verdict="converging")],
                    "levels": [level] * 2,
                    "judged": [_judged(0, "mouth", "mouth"), _judged(1, "heart", "heart")]},
    }
    text = lead_text("toy", "❤️", results, {"planted": 0.52, "ordinary": 0.01})
    short, first = text.split("\n\n")[:2]
    # one line per recipe first, in the vocabulary every view uses
    assert short == ("In short: **original recipe** (3 seeds): 3 one state, not settled; the similarity cycles in 2 of 3; "
                     "1 of 3 final images show a planted meaning (ring). **default recipe** (2 seeds): 2 settled; the "
                     "similarity cycles in none of 2; 2 of 2 final images show a planted meaning (heart, mouth).")
    assert ("under the original recipe the similarity to “❤️” drops suddenly 48-55 times per run (the drop test calls "
            "that a cycle in 2 of 3 seeds) and 1 of 3 final images show a planted meaning that the judge and the "
            "colours agree on (ring)") in first
    assert ("under the default recipe the similarity to “❤️” drops suddenly 0-2 times per run (the drop test calls "
            "that a cycle in none of 2 seeds) and 2 of 2 final images show") in first and "(heart, mouth)" in first
    assert "drops suddenly 52, 48, 55 times (every ~10, 13, 9 steps)" in text
    assert "a cycle in 2 of 3 seeds (surrogate p 0.001, 0.003, 0.169" in text
    assert "cannot resolve a cycle that short (in 2 of 2 cycling seeds)" in text
    assert "pixel values -9 to 8, shown clipped to [0, 1]" in text
    assert "read as mouth, heart to the independent judge and as mouth, heart by their colours" in text
    assert "every ~96, n/a steps" in text  # a run without two drops has no spacing
    # issue 27: where the per-step dynamics cycle, every view says so next to the states verdict (the demo too),
    # so the two cycling seeds carry the cycling note (summaries without `regular` give an average gap, not a period)
    assert ("the states found in the snapshots say one state, not settled; cycling: drops ~10 steps apart on average; "
            "one state, not settled; cycling: drops ~13 steps apart on average; one state, not settled.") in text
    assert "The states in the snapshots say settled; settled (0, 0 switches)" in text
