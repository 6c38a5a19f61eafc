// Helpers every page uses. Text from runs (prompts, words, errors) only ever reaches the page
// through textContent (cx.el), never as HTML: a prompt is the user's text, not markup.
"use strict";

const cx = (() => {
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const token = meta("clipxai-token");
  const readOnly = meta("clipxai-read-only") === "1";

  // el("a", {href: url, class: "x"}, "text", child) -> element; strings become text nodes
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") Object.assign(node.style, value);  // CSSOM: allowed by the page's CSP
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, {cache: "no-store"});
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", cache: "no-store",
      headers: {"Content-Type": "application/json", "X-Clipxai-Token": token},
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
    return answer;
  }

  const enc = encodeURIComponent;
  const runURL = (id) => `/run?id=${enc(id)}`;
  const compareURL = (ids) => "/compare?" + ids.map((id) => `id=${enc(id)}`).join("&");
  const frameURL = (id, i, size, bust) =>
    `/api/frame?id=${enc(id)}&i=${i}` + (size ? `&size=${size}` : "") + (bust !== undefined ? `&n=${bust}` : "");

  // state colours (matplotlib's tab10), the same order the analysis figures use
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const stateColor = (s) => (s === null || s === undefined ? "#cccccc" : palette[s % palette.length]);

  function stepsText(run) {
    const done = run.steps_done ?? "?";
    return run.steps_total ? `${done} / ${run.steps_total}` : String(done);
  }

  function dateText(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function badge(status) {
    return el("span", {class: `badge status-${String(status).replace(/[^a-z]/g, "")}`, text: status});
  }

  // frames(img, id).show(i): loads snapshot i into img, one request at a time, the newest wish
  // winning, so scrubbing never queues stale requests; img.dataset.index says what is shown;
  // onDone(i, ok) is called after each attempt
  function frames(img, id, onDone) {
    const state = {want: -1, shown: -1, busy: false};
    function pump() {
      if (state.busy || state.want < 0 || state.want === state.shown) return;
      const i = state.want;
      state.busy = true;
      const next = new Image();
      const done = (ok) => {
        state.busy = false;
        state.shown = i;
        if (ok) { img.src = next.src; img.dataset.index = String(i); }
        if (onDone) onDone(i, ok);
        pump();
      };
      next.onload = () => done(true);
      next.onerror = () => done(false);
      next.src = frameURL(id, i);
    }
    return {show(i) { state.want = i; pump(); }, get wanted() { return state.want; }};
  }

  function nav() {
    if (readOnly) document.querySelectorAll(".needs-write").forEach((n) => { n.hidden = true; });
  }
  document.addEventListener("DOMContentLoaded", nav);

  return {token, readOnly, el, getJSON, post, enc, runURL, compareURL, frameURL, frames, stateColor, palette,
          stepsText, dateText, badge};
})();
