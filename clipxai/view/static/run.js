// The run page: a scrubber over the snapshots, the image at the current one, and the charts
// with a cursor there. Frames are fetched one at a time (the newest wish wins), so scrubbing
// never queues up stale requests. A running run is polled and grows in place.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const id = new URLSearchParams(location.search).get("id") || ".";
  const POLL_MS = 1000;
  const MAP_EVERY_MS = 3000;

  let data = null;          // the latest /api/run answer
  let index = 0;            // current snapshot
  let follow = true;        // stay on the newest snapshot while the run grows
  let playTimer = null;
  let map = null, mapN = -1, mapAt = 0, mapPick = null, mapBusy = false;
  let chartMap = null, timelineMap = null;
  let loader = null;        // cx.frames on the page's image

  const n = () => (data && data.steps ? data.steps.length : 0);
  const jobRunning = () => Boolean(data && data.job && data.job.state === "running");
  const live = () => Boolean(data) && (data.pending ? jobRunning() : data.status === "running" || jobRunning());
  const stateOf = (i) => (data && data.analysis ? data.analysis.states[i] ?? null : null);

  function show(i, fromUser) {
    if (!n()) return;
    index = Math.max(0, Math.min(n() - 1, i));
    if (fromUser) follow = index === n() - 1;
    $("#slider").value = String(index);
    loader.show(index);
    drawCursor();
  }

  // ---- drawing ----------------------------------------------------------------------------
  function drawCursor() {
    const steps = data ? data.steps : [];
    const step = steps[index];
    const state = stateOf(index);
    $("#caption").textContent = n()
      ? `snapshot ${index + 1} of ${n()} · step ${step}` + (state !== null ? ` · state ${state}` : "")
      : "no snapshot yet";
    drawWords(state);
    drawChart(step);
    if (data && data.analysis) timelineMap = cx.chart.timeline($("#timeline"), {states: data.analysis.states, cursor: index});
    drawMap();
  }

  function drawWords(state) {
    const box = $("#state-words");
    const words = state !== null && data.analysis ? data.analysis.words[String(state)] : null;
    if (state === null) { box.replaceChildren(); return; }
    box.replaceChildren(
      cx.el("span", {class: "swatch", style: {background: cx.stateColor(state)}}),
      cx.el("strong", {text: `state ${state}`}),
      words && words.length ? cx.el("span", {text: ` CLIP's words: ${words.join(", ")}`})
                            : cx.el("span", {class: "muted", text: " (no words for this state)"}));
  }

  function drawChart(step) {
    const m = data ? data.metrics : null;
    if (!m || !m.steps.length) { chartMap = null; return; }
    const keys = Object.keys(m.series);
    chartMap = cx.chart.lines($("#chart"), {
      xs: m.steps, cursor: step,
      series: keys.map((k, j) => ({ys: m.series[k], color: cx.palette[j % cx.palette.length]})),
    });
  }

  function drawMap() {
    $("#projection").hidden = !(map && map.x.length);
    if ($("#projection").hidden) return;
    const count = map.x.length;
    const colors = [];
    for (let i = 0; i < count; i++) {
      const s = stateOf(i);
      colors.push(s !== null ? cx.stateColor(s) : cx.chart.stepColor(i, count));
    }
    mapPick = cx.chart.scatter($("#projection"), {x: map.x, y: map.y, colors, current: index}).pick;
  }

  async function fetchMap() {
    if (!n() || mapN === n() || mapBusy) return;
    if ((live() || !map) && Date.now() - mapAt < MAP_EVERY_MS) return;   // live: every few seconds
    mapAt = Date.now();
    mapBusy = true;
    try {
      map = await cx.getJSON(`/api/projection?id=${cx.enc(id)}`);
      mapN = map.n;
      drawMap();
    } catch (err) { /* the map is optional; a later frame or poll tries again */ }
    mapBusy = false;
  }

  function renderHead() {
    document.title = `${data.prompt || data.id} · clipxai`;
    $("#prompt").textContent = data.prompt || (data.pending ? data.id : "(no prompt)");
    const facts = [cx.badge(data.status), ` ${data.model || "?"} · steps ${cx.stepsText(data)} · ${n()} snapshots`];
    if (data.created) facts.push(` · ${cx.dateText(data.created)}`);
    if (data.stop_reason) facts.push(` · stopped: ${data.stop_reason}`);
    if (data.error) facts.push(cx.el("div", {class: "error", text: data.error}));
    facts.push(cx.el("div", {class: "muted path", text: data.path || ""}));
    $("#facts").replaceChildren(...facts);
    const job = data.job;
    $("#live").hidden = !live();
    $("#live").textContent = data.pending ? "starting: loading the model…" : "live: this run is being written";
    $("#stop").hidden = cx.readOnly || !(job && job.state === "running");
    const message = $("#message");
    message.hidden = !(job && job.error);
    if (job && job.error) message.textContent = `The run stopped with an error: ${job.error}`;
  }

  function renderAnalysis() {
    const a = data.analysis;
    $("#analysis").hidden = !a;
    $("#timeline-block").hidden = !a;
    $("#no-analysis").hidden = !!a || live() || !n();
    $("#analyze-cmd").textContent = `clipxai analyze ${data.path || data.id}`;
    if (!a) return;
    $("#verdict").textContent = a.verdict ? `verdict: ${a.verdict_words || a.verdict} (${a.verdict}).` : "";
    $("#verdict-reason").textContent = a.verdict_reason || "";
    const dyn = a.dynamics;
    // the sentence first, then only the fields that have a value, named in words
    const shown = (v) => v !== null && v !== undefined && v !== "" && typeof v !== "object";
    const say = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(3)
      : typeof v === "boolean" ? (v ? "yes" : "no") : String(v));
    const rows = dyn ? Object.entries(dyn).filter(([k, v]) => k !== "reason" && shown(v)) : [];
    $("#dynamics").replaceChildren(...(dyn ? [
      cx.el("h3", {text: "dynamics (per step)"}),
      dyn.reason ? cx.el("p", {text: dyn.reason}) : null,
      rows.length ? cx.el("table", {class: "kv"}, ...rows.map(([k, v]) =>
        cx.el("tr", {}, cx.el("th", {text: k.replace(/_/g, " ")}), cx.el("td", {text: say(v)})))) : null,
    ] : []));
    $("#figures").replaceChildren(...Object.entries(a.figures).map(([name, url]) =>
      cx.el("a", {href: url, target: "_blank", rel: "noopener"},
        cx.el("img", {src: url, alt: name, loading: "lazy"}), cx.el("span", {text: name}))));
    if (a.n_analysed !== null && a.n_analysed !== n()) {
      $("#verdict-reason").textContent += ` (analysed at ${a.n_analysed} snapshots; the run now has ${n()}.)`;
    }
  }

  function renderLegend() {
    const keys = data && data.metrics ? Object.keys(data.metrics.series) : [];
    $("#legend").replaceChildren(...keys.map((k, j) =>
      cx.el("span", {class: "key"}, cx.el("span", {class: "swatch", style: {background: cx.palette[j % cx.palette.length]}}), k)));
  }

  // ---- loading and polling ---------------------------------------------------------------
  async function load() {
    try {
      data = await cx.getJSON(`/api/run?id=${cx.enc(id)}`);
    } catch (err) {
      $("#prompt").textContent = "Run not found";
      $("#message").hidden = false;
      $("#message").textContent = `${id}: ${err.message}`;
      return;
    }
    if (data.pending) data.steps = data.steps || [];
    const waiting = !n();   // no snapshot yet: a placeholder, and no request for a frame that is not there
    $("#frame-wait").hidden = !waiting;
    $("#frame").hidden = waiting;
    renderHead();
    if (!data.pending) {
      $("#slider").max = String(Math.max(0, n() - 1));
      renderLegend();
      renderAnalysis();
      if (n() && (loader.wanted < 0 || (follow && live()))) show(n() - 1, false); else drawCursor();
      if (map) fetchMap();   // the first map waits for the first frame (see loader)
    }
    if (live()) setTimeout(load, POLL_MS);
  }

  // ---- controls -----------------------------------------------------------------------------
  function play(on) {
    clearInterval(playTimer);
    playTimer = null;
    $("#play").textContent = on ? "❚❚ pause" : "▶ play";
    if (!on) return;
    if (index >= n() - 1) show(0, true);
    playTimer = setInterval(() => {
      if (index >= n() - 1) { if (!live()) play(false); return; }
      show(index + 1, true);
    }, 1000 / Number($("#speed").value));
  }

  function nearestSnapshot(step) {
    const steps = data.steps;
    let lo = 0, hi = steps.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (steps[mid] < step) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(steps[lo - 1] - step) <= Math.abs(steps[lo] - step)) lo -= 1;
    return lo;
  }

  function onKey(e) {
    if (e.target.matches("input[type=text], input[type=search], select, textarea")) return;
    if (e.target === $("#slider") && ["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key) && !e.shiftKey) return;
    const jump = e.shiftKey ? 10 : 1;
    if (e.key === "ArrowLeft") show(index - jump, true);
    else if (e.key === "ArrowRight") show(index + jump, true);
    else if (e.key === "Home") show(0, true);
    else if (e.key === "End") show(n() - 1, true);
    else if (e.key === " ") play(!playTimer);
    else return;
    e.preventDefault();
  }

  document.addEventListener("DOMContentLoaded", () => {
    loader = cx.frames($("#frame"), id, () => { if (!map) fetchMap(); });
    $("#slider").addEventListener("input", (e) => show(Number(e.target.value), true));
    $("#prev").addEventListener("click", () => show(index - 1, true));
    $("#next").addEventListener("click", () => show(index + 1, true));
    $("#play").addEventListener("click", () => play(!playTimer));
    $("#speed").addEventListener("change", () => { if (playTimer) play(true); });
    document.addEventListener("keydown", onKey);
    $("#chart").addEventListener("click", (e) => {
      if (chartMap && n()) show(nearestSnapshot(chartMap.xOf(e.offsetX)), true);
    });
    $("#timeline").addEventListener("click", (e) => { if (timelineMap) show(timelineMap.indexOf(e.offsetX), true); });
    const hover = $("#hover");
    $("#projection").addEventListener("mousemove", (e) => {
      const i = mapPick ? mapPick(e.offsetX, e.offsetY) : -1;
      hover.hidden = i < 0;
      if (i < 0) return;
      const src = cx.frameURL(id, i, 96);
      if ($("#hover-img").getAttribute("src") !== src) $("#hover-img").src = src;
      const s = stateOf(i);
      $("#hover-text").textContent = `snapshot ${i + 1} · step ${data.steps[i]}` + (s !== null ? ` · state ${s}` : "");
      hover.style.left = `${e.offsetX + 14}px`;
      hover.style.top = `${e.offsetY + 14}px`;
    });
    $("#projection").addEventListener("mouseleave", () => { hover.hidden = true; });
    $("#projection").addEventListener("click", (e) => {
      const i = mapPick ? mapPick(e.offsetX, e.offsetY) : -1;
      if (i >= 0) show(i, true);
    });
    $("#stop").addEventListener("click", async () => {
      $("#stop").disabled = true;
      try {
        await cx.post("/api/cancel", {id});
        $("#live").textContent = "stopping after the current step…";
      } catch (err) {
        $("#message").hidden = false;
        $("#message").textContent = `Cannot stop the run: ${err.message}`;
        $("#stop").disabled = false;
      }
    });
    window.addEventListener("resize", () => { if (data) drawCursor(); });
    load();
  });
})();
