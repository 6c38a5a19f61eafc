"""A run's "Is it really there?" section: from ``analysis/evaluation.json`` (``clipxai evaluate``).

Per state and for the final image: each judge's cosine to the prompt and its z-score against the
judge's own baseline, the transfer rate and agreement, the worst perturbation's robustness, the
farthest layer of the pathway from natural images, the written-words score, the sparse reading,
and the one-line verdict those numbers give.
"""

from __future__ import annotations

from clipxai.analysis.trust.run import read_evaluation
from clipxai.report.document import Document

TITLE = "Is it really there?"


def _num(x, spec: str = ".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def _judges(e: dict) -> str:
    judges = e.get("judges") if isinstance(e.get("judges"), dict) else {}
    return "; ".join(f"{k} {_num(v.get('cosine'), '.3f')} (z {_num(v.get('z'), '.1f')})"
                     for k, v in judges.items() if isinstance(v, dict)) or "none"


def _sparse(e: dict) -> str:
    s = e.get("sparse_reading") if isinstance(e.get("sparse_reading"), dict) else {}
    pairs = list(zip(s.get("words") or [], s.get("weights") or []))[:5]
    if not pairs:
        return "n/a"
    return ", ".join(f"{w} {_num(x)}" for w, x in pairs) + f" (fidelity {_num(s.get('fidelity'))})"


def _written(e: dict) -> str:
    flag = e.get("is_written")
    return f"{_num(e.get('written'), '.1f')} ({'written' if flag else 'no' if flag is not None else 'n/a'})"


def _row(name: str, e: dict) -> list[str]:
    return [name, _judges(e), _num(e.get("transfer_rate")), _num(e.get("agreement")), _num(e.get("robustness_min")),
            _num(e.get("pathway_max"), ".1f"), _written(e), _sparse(e)]


def _entries(data: dict) -> list[tuple[str, dict]]:
    out = []
    if isinstance(data.get("final"), dict):
        out.append((f"final image ({data['final'].get('source', 'final.png')})", data["final"]))
    out += [(f"state {s.get('state')}", s) for s in data["states"] if isinstance(s, dict)]
    return out


def trust_section(doc: Document, run, ident: str) -> None:
    """Add the section when the run's analysis has an evaluation.json; nothing otherwise."""
    data = read_evaluation(run)
    if data is None:
        return
    doc.heading(3, TITLE, f"{ident}-trust")
    ref = data.get("reference") if isinstance(data.get("reference"), dict) else {}
    kind = {"folder": "the reference folder's", "toy world": "the toy world's"}.get(ref.get("kind"))
    judges = ", ".join(map(str, data.get("judges") or [])) or "no other model"
    natural = f" and {ref.get('images')} of {kind} natural images" if kind else ""
    doc.paragraph(f"Is what {data.get('model')} sees in these images there for other models too? Judged by "
                  f"{judges}; each cosine to the prompt is also a z-score against the judge's own cosines for "
                  f"seeded noise{natural}. "
                  f"A state is measured on up to {(data.get('options') or {}).get('per_state', 'n/a')} of its "
                  f"snapshots. docs/analysis.md defines every number.")
    entries = _entries(data)
    doc.table(["entry", "judges: cosine (z)", "transfer", "agreement", "robustness_min", "pathway_max", "written",
               "sparse reading (fidelity)"],
              [_row(name, e) for name, e in entries],
              "Transfer: the share of judges whose cosine stands at least 2 SD above their baseline; agreement: the "
              "share whose zero-shot reading is the model's own; robustness_min: the share of the similarity above "
              "noise kept under the worst perturbation; pathway_max: the farthest layer from natural images, in "
              "natural spreads; written: the written-words score (>= 0: the prompt's words written out).")
    doc.items([f"{name}: {e.get('verdict', 'n/a')}" for name, e in entries])
