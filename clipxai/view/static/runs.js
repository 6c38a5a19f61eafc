// The runs page: every run under the served folder, filtered and sorted in the browser,
// refreshed while any of them is running.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const selected = new Set();
  let runs = [];

  function key(run, field) {
    const v = run[field];
    return v === null || v === undefined ? "" : v;
  }

  function visible() {
    const words = $("#filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const status = $("#status").value;
    const [field, order] = $("#sort").value.split("-");
    const rows = runs.filter((r) => {
      if (status && r.status !== status) return false;
      const hay = [r.prompt, r.model, r.verdict, r.verdict_words, r.id, r.status].join(" ").toLowerCase();
      return words.every((w) => hay.includes(w));
    });
    rows.sort((a, b) => {
      const x = key(a, field), y = key(b, field);
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return order === "desc" ? -c : c;
    });
    return rows;
  }

  function row(r) {
    const box = cx.el("input", {type: "checkbox", "aria-label": "select for comparison", checked: selected.has(r.id),
      onchange: (e) => { e.target.checked ? selected.add(r.id) : selected.delete(r.id); update(); }});
    const thumb = r.n > 0
      ? cx.el("img", {class: "thumb", loading: "lazy", alt: "", src: cx.frameURL(r.id, -1, 64, r.n)})
      : cx.el("span", {class: "thumb empty"});
    return cx.el("tr", {dataset: {id: r.id}},
      cx.el("td", {}, box),
      cx.el("td", {}, cx.el("a", {href: cx.runURL(r.id), tabindex: -1}, thumb)),
      cx.el("td", {class: "prompt"}, cx.el("a", {href: cx.runURL(r.id), text: r.prompt || "(no prompt)"})),
      cx.el("td", {}, cx.badge(r.status)),
      cx.el("td", {text: r.model || ""}),
      cx.el("td", {text: cx.stepsText(r)}),
      cx.el("td", {text: r.n}),
      cx.el("td", {text: r.verdict_words || r.verdict || "", title: r.verdict || ""}),
      cx.el("td", {text: cx.dateText(r.created)}),
      cx.el("td", {class: "folder", text: r.id}));
  }

  function update() {
    const rows = visible();
    $("#runs tbody").replaceChildren(...rows.map(row));
    $("#count").textContent = `${rows.length} of ${runs.length} runs`;
    $("#compare").disabled = selected.size < 2;
    $("#compare").textContent = `compare selected (${selected.size})`;
  }

  const FIRST_PAGE = 100;   // rows drawn before the whole list has arrived

  async function refresh(first) {
    try {
      const data = await cx.getJSON(first ? `/api/runs?limit=${FIRST_PAGE}` : "/api/runs");
      runs = data.runs;
      $("#root").textContent = data.root;
      const message = $("#message");
      message.hidden = runs.length > 0;
      message.textContent = "No runs here yet. Start one with clipxai ascend, or from the start page.";
      update();
      if (first && data.total > runs.length) {
        $("#count").textContent = `${runs.length} newest of ${data.total} runs (the rest are on their way)`;
        refresh(false);
        return;
      }
      if (runs.some((r) => r.status === "running")) setTimeout(() => refresh(false), 2000);
    } catch (err) {
      $("#message").hidden = false;
      $("#message").textContent = `Cannot list the runs: ${err.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#filter").addEventListener("input", update);
    $("#status").addEventListener("change", update);
    $("#sort").addEventListener("change", update);
    for (const th of document.querySelectorAll("th[data-sort]")) {
      th.addEventListener("click", () => {
        const [field, order] = $("#sort").value.split("-");
        const next = field === th.dataset.sort && order === "asc" ? "desc" : "asc";
        const value = `${th.dataset.sort}-${next}`;
        if (![...$("#sort").options].some((o) => o.value === value)) $("#sort").append(cx.el("option", {value, text: value}));
        $("#sort").value = value;
        update();
      });
    }
    $("#compare").addEventListener("click", () => { location.href = cx.compareURL([...selected]); });
    refresh(true);
  });
})();
