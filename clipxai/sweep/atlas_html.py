"""atlas.html: one self-contained page (images are data URIs, no script, no external file).

Three views of a sweep: verdict counts per prompt; the final images by prompt x seed, one
panel per combination of the other grid values (model, lr, ...); and for each prompt the
states every seed visited, with CLIP's words for them and how many runs share each word.
Every string that comes from a user (prompts, words, values, errors, paths) is escaped.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the atlas hands itself in; this module only reads it
    from clipxai.sweep.atlas import Atlas, AtlasEntry

KNOWN_VERDICTS = ("converging", "single_state", "metastable_switching", "periodic_oscillation")
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d1d1f;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
th{background:#f5f5f7;text-align:left}td.n{text-align:right}
figure{margin:0;text-align:center}figure img{display:block;margin:auto;image-rendering:pixelated}
figcaption{font-size:12px;color:#444}.fail{color:#a00;font-size:12px;max-width:160px}
.st{display:inline-block;margin:0 8px 4px 0;vertical-align:top;max-width:150px;font-size:12px}
.st img{display:block;image-rendering:pixelated}.w{color:#333}.muted{color:#888}
"""


def e(value) -> str:
    """A value as escaped HTML text (non-strings as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return html.escape(text, quote=True)


def _panel_keys(atlas: Atlas) -> list[str]:
    return [k for k in atlas.grid_keys if k not in ("prompt", "seed")]


def _panel(entry: AtlasEntry, keys: list[str]) -> tuple:
    return tuple(json.dumps(entry.values.get(k), sort_keys=True, ensure_ascii=False) for k in keys)


def _panel_label(keys: list[str], panel: tuple) -> str:
    return ", ".join(f"{e(k)} = {e(json.loads(v))}" for k, v in zip(keys, panel)) or "all runs"


def _ordered(items) -> list:
    return list(dict.fromkeys(items))


def _verdict_table(atlas: Atlas, keys: list[str]) -> str:
    entries = atlas.entries
    seen = _ordered(en.verdict for en in entries if en.verdict)
    verdicts = [v for v in KNOWN_VERDICTS if v in seen] + [v for v in seen if v not in KNOWN_VERDICTS]
    columns = [*verdicts, "not analyzed", "failed"]
    groups: dict[tuple, list[AtlasEntry]] = {}
    rank = {p: i for i, p in enumerate(_ordered(en.prompt for en in entries))}
    for en in sorted(entries, key=lambda en: rank[en.prompt]):   # a prompt's panels together
        groups.setdefault((en.prompt, _panel(en, keys)), []).append(en)
    head = "<th>prompt</th>" + "".join(f"<th>{e(k)}</th>" for k in keys) + "<th>runs</th>" + \
        "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for (prompt, panel), members in groups.items():
        counts = Counter(en.verdict or ("failed" if en.status != "complete" else "not analyzed") for en in members)
        cells = "".join(f"<td>{e(json.loads(v))}</td>" for v in panel)
        body.append(f"<tr><td>{e(prompt)}</td>{cells}<td class=n>{len(members)}</td>"
                    + "".join(f"<td class=n>{counts.get(c, 0) or ''}</td>" for c in columns) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _cell(en: AtlasEntry, size: int) -> str:
    if en.image is None:
        reason = en.error or en.status
        return f"<td><div class=fail title=\"{e(reason)}\">{e(en.status)}: {e(reason)}</div></td>"
    sim = "" if en.final_similarity is None else f" · {en.final_similarity:.3f}"
    verdict = en.verdict_words or en.verdict or "not analyzed"
    return (f"<td><figure><img src=\"{en.image}\" width={size} alt=\"{e(en.prompt)}, seed {e(en.seed)}\" "
            f"title=\"{e(en.folder)}\"><figcaption>{e(verdict)}{e(sim)}</figcaption></figure></td>")


def _image_grids(atlas: Atlas, keys: list[str]) -> str:
    panels: dict[tuple, list[AtlasEntry]] = {}
    for en in atlas.entries:
        panels.setdefault(_panel(en, keys), []).append(en)
    out = []
    for panel, members in panels.items():
        seeds = sorted(_ordered(en.seed for en in members), key=lambda s: (not isinstance(s, int), s))
        prompts = _ordered(en.prompt for en in members)
        at = {(en.prompt, en.seed): en for en in members}
        head = "<th>prompt \\ seed</th>" + "".join(f"<th>{e(s)}</th>" for s in seeds)
        rows = []
        for p in prompts:
            cells = "".join(_cell(at[(p, s)], atlas.thumb) if (p, s) in at else "<td></td>" for s in seeds)
            rows.append(f"<tr><th>{e(p)}</th>{cells}</tr>")
        if keys:
            out.append(f"<h3>{_panel_label(keys, panel)}</h3>")
        out.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    return "".join(out)


def _states_of(en: AtlasEntry, size: int) -> str:
    if not en.states:
        return f"<span class=muted>{e(en.error or en.status if en.status != 'complete' else 'no states')}</span>"
    blocks = []
    for st in en.states:
        img = f"<img src=\"{st['image']}\" width={size} alt=\"state {st['state']}\">" if st.get("image") else ""
        words = ", ".join(e(w) for w in st["words"] if w) or "<span class=muted>no words</span>"
        blocks.append(f"<div class=st>{img}state {st['state']} · {st['share'] * 100:.0f}%<br>"
                      f"<span class=w>{words}</span></div>")
    return "".join(blocks)


def _prompt_states(atlas: Atlas, keys: list[str]) -> str:
    by_prompt: dict[str, list[AtlasEntry]] = {}
    for en in atlas.entries:
        by_prompt.setdefault(en.prompt, []).append(en)
    out = []
    for prompt, members in by_prompt.items():
        counted = Counter(w for en in members for w in {w for st in en.states for w in st["words"] if w})
        analyzed = sum(1 for en in members if en.states)
        common = " · ".join(f"{e(w)} {n}/{analyzed}" for w, n in counted.most_common(12))
        head = ("".join(f"<th>{e(k)}</th>" for k in keys)
                + "<th>seed</th><th>verdict</th><th>states (share of snapshots, words)</th>")
        rows = []
        for en in members:
            cells = "".join(f"<td>{e(en.values.get(k))}</td>" for k in keys)
            verdict = en.verdict_words or en.verdict or ""
            states = _states_of(en, max(16, atlas.thumb * 3 // 4))
            rows.append(f"<tr>{cells}<td>{e(en.seed)}</td><td>{e(verdict)}</td><td>{states}</td></tr>")
        out.append(f"<h3>{e(prompt)}</h3><p>words across {analyzed} analyzed run{'s' if analyzed != 1 else ''}: "
                   f"{common or '<span class=muted>none</span>'}</p><table><tr>{head}</tr>{''.join(rows)}</table>")
    return "".join(out)


def _failures(atlas: Atlas) -> str:
    bad = [en for en in atlas.entries if en.status != "complete" or en.error]
    if not bad:
        return ""
    rows = "".join(f"<tr><td>{e(en.folder)}</td><td>{e(en.status)}</td><td>{e(en.error or '')}</td></tr>" for en in bad)
    return f"<h2>Runs without a result</h2><table><tr><th>run</th><th>status</th><th>reason</th></tr>{rows}</table>"


def render(atlas: Atlas) -> str:
    keys = _panel_keys(atlas)
    n = len(atlas.entries)
    complete = sum(en.status == "complete" for en in atlas.entries)
    grid = " × ".join(f"{e(k)} ({len((atlas.spec.get('grid') or {}).get(k, []))})" for k in atlas.grid_keys)
    fixed = ", ".join(f"{e(k)} = {e(v)}" for k, v in (atlas.spec.get("ascend") or {}).items())
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Concept atlas: {e(atlas.name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Concept atlas: {e(atlas.name)}</h1>"
        f"<p class=meta>{n} runs, {complete} complete · grid: {grid or 'none'} · fixed: {fixed or 'none'} · "
        f"made {made}</p>"
        f"<h2>Verdicts per prompt</h2>{_verdict_table(atlas, keys)}"
        f"<h2>Final images</h2><p class=meta>Each cell: the image after the last step, its verdict, and its "
        f"similarity to the prompt at the last step.</p>{_image_grids(atlas, keys)}"
        f"<h2>States per prompt</h2><p class=meta>Each state a run visited: its most typical snapshot, the share "
        f"of snapshots spent in it, and CLIP's closest words.</p>{_prompt_states(atlas, keys)}"
        f"{_failures(atlas)}</body></html>\n"
    )
