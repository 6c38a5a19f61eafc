// The start form: sends prompt, model, preset and steps (with the page's token) and opens
// the new run's live page.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);

  async function options() {
    try {
      const data = await cx.getJSON("/api/options");
      $("#models").replaceChildren(...data.models.map((m) => cx.el("option", {value: m})));
      const current = $("#preset").value;
      $("#preset").replaceChildren(...data.presets.map((p) => cx.el("option", {value: p, text: p, selected: p === current})));
    } catch (err) { /* the defaults in the form still work */ }
  }

  async function submit(e) {
    e.preventDefault();
    const message = $("#message");
    message.hidden = true;
    $("#submit").disabled = true;
    try {
      const answer = await cx.post("/api/start", {
        prompt: $("#prompt").value, model: $("#model").value.trim(),
        preset: $("#preset").value, steps: Number($("#steps").value),
      });
      location.href = cx.runURL(answer.id);
    } catch (err) {
      message.hidden = false;
      message.textContent = `Not started: ${err.message}`;
      $("#submit").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (cx.readOnly) {
      $("#read-only").hidden = false;
      for (const field of $("#start").elements) field.disabled = true;
      return;
    }
    $("#start").addEventListener("submit", submit);
    options();
  });
})();
