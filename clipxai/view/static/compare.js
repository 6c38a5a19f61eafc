// Compare: two or more runs on one scrubber. The scrubber walks the union of their snapshot
// steps; each run shows its latest snapshot at or before the current step, so runs with
// different snapshot intervals or lengths stay aligned by step.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const ids = new URLSearchParams(location.search).getAll("id");
  let runs = [];            // /api/run answers, in the order of ids
  let panels = [];          // {img, caption, frames}
  let steps = [];           // union of all snapshot steps
  let pos = 0, follow = false, playTimer = null;

  function atOrBefore(list, step) {
    let lo = 0, hi = list.length - 1, best = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (list[mid] <= step) { best = mid; lo = mid + 1; } else hi = mid - 1; }
    return best;
  }

  function draw() {
    const step = steps[pos];
    $("#step").textContent = steps.length ? `step ${step}` : "no snapshots yet";
    runs.forEach((run, k) => {
      const i = step === undefined ? -1 : atOrBefore(run.steps, step);
      const p = panels[k];
      if (i >= 0) p.frames.show(i);
      p.caption.textContent = i >= 0 ? `snapshot ${i + 1} of ${run.steps.length} · step ${run.steps[i]}` : "not started yet";
    });
    const series = runs.map((run, k) => {
      const key = Object.keys(run.metrics.series)[0];
      return {xs: run.metrics.steps, ys: key ? run.metrics.series[key] : [], color: cx.palette[k % cx.palette.length]};
    });
    const all = runs.flatMap((r) => r.metrics.steps);
    if (all.length) cx.chart.lines($("#chart"), {xs: [Math.min(...all), Math.max(...all)], series, cursor: step});
  }

  function go(p, fromUser) {
    pos = Math.max(0, Math.min(steps.length - 1, p));
    if (fromUser) follow = pos === steps.length - 1;
    $("#slider").value = String(pos);
    draw();
  }

  function panel(run, k) {
    const img = cx.el("img", {class: "frame", alt: `the image of run ${k + 1}`, width: 256, height: 256});
    const caption = cx.el("div", {class: "caption"});
    const head = cx.el("div", {class: "panel-head"},
      cx.el("span", {class: "swatch", style: {background: cx.palette[k % cx.palette.length]}}),
      cx.el("a", {href: cx.runURL(run.id), class: "prompt", text: run.prompt || run.id}));
    const facts = cx.el("div", {class: "facts"}, cx.badge(run.status),
      ` ${run.model || "?"} · ${run.steps.length} snapshots`,
      run.analysis && run.analysis.verdict ? ` · ${run.analysis.verdict_words || run.analysis.verdict}` : "");
    const node = cx.el("div", {class: "panel", dataset: {id: run.id}}, head, facts, img, caption);
    return {node, img, caption, frames: cx.frames(img, run.id)};
  }

  async function load() {
    const answers = await Promise.all(ids.map((id) => cx.getJSON(`/api/run?id=${cx.enc(id)}`).catch((err) => ({id, error: err.message}))));
    const missing = answers.filter((a) => a.error || a.pending);
    runs = answers.filter((a) => !a.error && !a.pending);
    if (!panels.length) {
      panels = runs.map(panel);
      $("#panels").replaceChildren(...panels.map((p) => p.node),
        ...missing.map((a) => cx.el("div", {class: "panel missing", text: `${a.id}: ${a.error || "not started yet"}`})));
      $("#legend").replaceChildren(...runs.map((r, k) => cx.el("span", {class: "key"},
        cx.el("span", {class: "swatch", style: {background: cx.palette[k % cx.palette.length]}}), r.prompt || r.id)));
    }
    const atEnd = follow || !steps.length;
    steps = [...new Set(runs.flatMap((r) => r.steps))].sort((a, b) => a - b);
    $("#slider").max = String(Math.max(0, steps.length - 1));
    go(atEnd ? steps.length - 1 : pos, false);
    if (runs.some((r) => r.status === "running")) setTimeout(load, 1500);
  }

  function play(on) {
    clearInterval(playTimer);
    playTimer = null;
    $("#play").textContent = on ? "❚❚ pause" : "▶ play";
    if (!on) return;
    if (pos >= steps.length - 1) go(0, true);
    playTimer = setInterval(() => (pos >= steps.length - 1 ? play(false) : go(pos + 1, true)), 100);
  }

  async function picker() {
    $("#picker").hidden = false;
    const chosen = new Set(ids);
    const data = await cx.getJSON("/api/runs");
    const update = () => { $("#go").disabled = chosen.size < 2; };
    $("#choices").replaceChildren(...data.runs.map((r) => cx.el("li", {}, cx.el("label", {},
      cx.el("input", {type: "checkbox", checked: chosen.has(r.id),
        onchange: (e) => { e.target.checked ? chosen.add(r.id) : chosen.delete(r.id); update(); }}),
      ` ${r.prompt || "(no prompt)"} `, cx.el("span", {class: "muted", text: `${r.id} · ${r.status}`})))));
    $("#go").addEventListener("click", () => { location.href = cx.compareURL([...chosen]); });
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (ids.length < 2) { picker(); return; }
    $("#compare").hidden = false;
    $("#slider").addEventListener("input", (e) => go(Number(e.target.value), true));
    $("#prev").addEventListener("click", () => go(pos - 1, true));
    $("#next").addEventListener("click", () => go(pos + 1, true));
    $("#play").addEventListener("click", () => play(!playTimer));
    document.addEventListener("keydown", (e) => {
      if (e.target === $("#slider") && !e.shiftKey && e.key.startsWith("Arrow")) return;
      const jump = e.shiftKey ? 10 : 1;
      if (e.key === "ArrowLeft") go(pos - jump, true);
      else if (e.key === "ArrowRight") go(pos + jump, true);
      else if (e.key === " ") play(!playTimer);
      else return;
      e.preventDefault();
    });
    window.addEventListener("resize", draw);
    load();
  });
})();
