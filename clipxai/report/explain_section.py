"""A run's "What in CLIP makes each state" section: from ``analysis/explain.json`` (``clipxai explain``).

Per state, its top components with their contribution to the prompt similarity (bootstrap 95%
interval) and their words, the ablation of its components of largest total effect (and of its top
ones) against random ones, and the heat map of where its heads write the similarity over its
typical snapshot. A figure explain.json
names is copied only when it is a picture inside the run's analysis folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clipxai.analysis.explain.run import read_explanation
from clipxai.errors import RunError
from clipxai.report.document import MIME, Document
from clipxai.util.paths import inside

TITLE = "What in CLIP makes each state"


def _copy(run, rel, target_base: Path) -> Path | None:
    """The picture ``rel`` of the run's analysis folder copied beside the report, or None."""
    if not isinstance(rel, str):
        return None
    try:
        source = inside(run.analysis_dir, rel, "figure")
    except RunError:
        return None
    if not source.is_file() or source.suffix.lower() not in MIME:
        return None
    target = target_base.with_suffix(source.suffix.lower())
    shutil.copyfile(source, target)
    return target


def _num(x, spec: str = "+.3f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def _rows(state: dict) -> list[list[str]]:
    rows = []
    for t in state.get("top") or []:
        ci = t.get("ci95") if isinstance(t.get("ci95"), list) and len(t["ci95"]) == 2 else [None, None]
        basis = ", ".join(f"{b.get('word')} ({100 * b.get('variance', 0):.0f}%)" for b in t.get("basis") or [])
        rows.append([str(state.get("state")), str(t.get("component")),
                     f"{_num(t.get('contribution'))} ({_num(ci[0])} to {_num(ci[1])})",
                     ", ".join(map(str, t.get("words") or [])) or "n/a", basis or "n/a"])
    return rows


def _judged(a: dict) -> str:
    return "more than" if isinstance(a.get("p_value"), (int, float)) and a["p_value"] < 0.01 else "not clearly more than"


def _ablation_line(state: dict) -> str:
    a = state.get("ablation")
    if not isinstance(a, dict):
        return f"State {state.get('state')}: no ablation test (the model has too few components)."
    chosen = ("of largest total effect (estimated on other snapshots of the state)"
              if a.get("ranked_by") == "total_effect" else "of largest contribution")
    line = (f"State {state.get('state')}: mean-ablating its {a.get('k')} components {chosen} "
            f"({', '.join(map(str, a.get('components') or []))}) drops the similarity by {_num(a.get('drop'), '.3f')}, "
            f"{_judged(a)} {a.get('k')} random components do ({_num(a.get('random_drop'), '.3f')} on average; "
            f"p = {_num(a.get('p_value'), '.3g')} over {a.get('draws')} draws, on {a.get('images')} snapshots).")
    d = state.get("ablation_direct")
    if isinstance(d, dict) and d.get("components") != a.get("components"):
        line += (f" Its top {d.get('k')} by contribution ({', '.join(map(str, d.get('components') or []))}) drop it "
                 f"by {_num(d.get('drop'), '.3f')} (p = {_num(d.get('p_value'), '.3g')} over {d.get('draws')} "
                 f"random sets sharing none of them).")
    return line


def explain_section(doc: Document, run, fig_dir: Path, prefix: str, ident: str) -> None:
    """Add the section when the run's analysis has an explain.json; nothing otherwise."""
    data = read_explanation(run)
    if data is None:
        return
    doc.heading(3, TITLE, f"{ident}-explain")
    ref = data.get("reference") or {}
    doc.paragraph(f"Every snapshot's embedding is split into {len(data.get('components') or [])} components of "
                  f"{data.get('model')} (the parts add up to it within {_num(data.get('sum_error'), '.1e')}); a "
                  f"component's contribution is its part's share of the cosine with the prompt. Ablation replaces "
                  f"a component's write by its mean over {ref.get('images', 'n/a')} "
                  f"{'reference images' if ref.get('kind') == 'folder' else 'snapshots of the run'}.")
    states = [s for s in data["states"] if isinstance(s, dict)]
    doc.table(["state", "component", "contribution (95% CI)", "words", "text basis (variance)"],
              [row for s in states for row in _rows(s)],
              "Each state's top components by their mean contribution to the similarity with the prompt, the "
              "words whose text embeddings align best with what each writes in the state, and a greedy basis "
              "of words for what it writes over the whole run.")
    doc.items([_ablation_line(s) for s in states])
    figures = data.get("figures") or {}
    chart = _copy(run, figures.get("top_components"), fig_dir / f"{prefix}explain_top")
    if chart is not None:
        doc.figure(chart, "Each state's top components: mean contribution to the similarity, with 95% intervals.")
    for s in states:
        picture = _copy(run, (s.get("map") or {}).get("file"), fig_dir / f"{prefix}explain_map_state{s.get('state')}")
        if picture is not None:
            doc.figure(picture, f"State {s.get('state')}: where in its typical snapshot (step "
                                f"{(s.get('map') or {}).get('step')}) the heads write the similarity "
                                f"(red adds to it, blue takes from it).", "half")
