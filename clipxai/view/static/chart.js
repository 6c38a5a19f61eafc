// Canvas drawings of the run page: line chart with a cursor, state timeline, 2-D map.
// Each returns what a click or hover needs to map pixels back to data.
"use strict";

cx.chart = (() => {
  const PAD = {left: 42, right: 10, top: 8, bottom: 20};

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400;
    const h = canvas.clientHeight || 160;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return {ctx, w, h};
  }

  function range(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) return [lo - 0.5, hi + 0.5];
    return [lo, hi];
  }

  // lines(canvas, {xs, series: [{ys, color, label}], cursor, xRange}) -> {xOf(px)}
  function lines(canvas, opts) {
    const {ctx, w, h} = setup(canvas);
    const xs = opts.xs || [];
    const [x0, x1] = opts.xRange || range(xs);
    const [y0, y1] = range(opts.series.flatMap((s) => s.ys));
    const px = (x) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * (w - PAD.left - PAD.right);
    const py = (y) => h - PAD.bottom - ((y - y0) / (y1 - y0 || 1)) * (h - PAD.top - PAD.bottom);
    ctx.strokeStyle = "#bbb";
    ctx.strokeRect(PAD.left, PAD.top, w - PAD.left - PAD.right, h - PAD.top - PAD.bottom);
    ctx.fillStyle = "#555";
    ctx.textAlign = "right";
    ctx.fillText(y1.toFixed(3), PAD.left - 4, PAD.top + 9);
    ctx.fillText(y0.toFixed(3), PAD.left - 4, h - PAD.bottom);
    ctx.textAlign = "left";
    ctx.fillText(`step ${x0}`, PAD.left, h - 5);
    ctx.textAlign = "right";
    ctx.fillText(`${x1}`, w - PAD.right, h - 5);
    for (const s of opts.series) {
      const sx = s.xs || xs;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.3;
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < sx.length; i++) {
        const v = s.ys[i];
        if (v === null || !Number.isFinite(v)) { pen = false; continue; }
        if (pen) ctx.lineTo(px(sx[i]), py(v)); else ctx.moveTo(px(sx[i]), py(v));
        pen = true;
      }
      ctx.stroke();
    }
    if (opts.cursor !== undefined && opts.cursor !== null) {
      ctx.strokeStyle = "#d62728";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(px(opts.cursor), PAD.top);
      ctx.lineTo(px(opts.cursor), h - PAD.bottom);
      ctx.stroke();
    }
    return {xOf: (p) => x0 + ((p - PAD.left) / (w - PAD.left - PAD.right)) * (x1 - x0)};
  }

  // timeline(canvas, {states, cursor}) -> {indexOf(px)}: one coloured band per snapshot
  function timeline(canvas, opts) {
    const {ctx, w, h} = setup(canvas);
    const n = opts.states.length;
    const width = w - PAD.left - PAD.right;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = cx.stateColor(opts.states[i]);
      const a = PAD.left + (i / n) * width;
      ctx.fillRect(a, 2, Math.max(1, width / n + 0.5), h - 4);
    }
    if (n && opts.cursor !== null && opts.cursor !== undefined) {
      const c = PAD.left + ((opts.cursor + 0.5) / n) * width;
      ctx.fillStyle = "#000";
      ctx.fillRect(c - 1, 0, 2, h);
    }
    return {indexOf: (p) => Math.max(0, Math.min(n - 1, Math.floor(((p - PAD.left) / width) * n)))};
  }

  // scatter(canvas, {x, y, colors, current}) -> {pick(px, py)}: the path, points, current point ringed
  function scatter(canvas, opts) {
    const {ctx, w, h} = setup(canvas);
    const n = opts.x.length;
    const [x0, x1] = range(opts.x);
    const [y0, y1] = range(opts.y);
    const m = 12;
    const px = (v) => m + ((v - x0) / (x1 - x0 || 1)) * (w - 2 * m);
    const py = (v) => h - m - ((v - y0) / (y1 - y0 || 1)) * (h - 2 * m);
    ctx.strokeStyle = "rgba(0,0,0,0.15)";
    ctx.beginPath();
    for (let i = 0; i < n; i++) (i ? ctx.lineTo : ctx.moveTo).call(ctx, px(opts.x[i]), py(opts.y[i]));
    ctx.stroke();
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = opts.colors[i];
      ctx.beginPath();
      ctx.arc(px(opts.x[i]), py(opts.y[i]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    const c = opts.current;
    if (c !== null && c !== undefined && c < n) {
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(px(opts.x[c]), py(opts.y[c]), 7, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    return {
      pick(mx, my) {
        let best = -1, bestD = 100;  // within 10 px
        for (let i = 0; i < n; i++) {
          const d = (px(opts.x[i]) - mx) ** 2 + (py(opts.y[i]) - my) ** 2;
          if (d < bestD) { bestD = d; best = i; }
        }
        return best;
      },
    };
  }

  // colours from dark to light along the run, for maps without states
  function stepColor(i, n) {
    const t = n > 1 ? i / (n - 1) : 0;
    return `hsl(${260 - 200 * t}, 70%, ${30 + 30 * t}%)`;
  }

  return {lines, timeline, scatter, stepColor};
})();
