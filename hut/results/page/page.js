// The results page's plots, drawn as inline SVG from the JSON in #page-data (no library, no network:
// see hut/results/page/__init__.py for why). Three kinds: "strip" (values per row: seeds, mean with
// its 95% t-interval, the paper's figure, the verdict), "scatter" (points against the x axis chosen in
// #pareto-x, the front joined), "lines" (series of [x, y]). Filters: the method checkboxes hide a
// method's rows, points and series everywhere; #pareto-x changes every scatter plot's x axis.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("page-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
  // t quantiles (0.975) for 1..30 degrees of freedom, then the normal's
  const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
    2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  const state = {hidden: new Set(), x: null};
  const methodColor = {};
  function color(m) {
    if (!(m in methodColor)) methodColor[m] = COLORS[Object.keys(methodColor).length % COLORS.length];
    return methodColor[m];
  }
  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1).replace("e+", "e");
    return String(+v.toPrecision(4));
  }
  // an axis: a linear or log scale over [lo, hi] mapped to [a, b] pixels, with its ticks
  function scale(lo, hi, a, b, log) {
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
    if (hi === lo) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
    const f = v => a + ((log ? Math.log10(v) : v) - lo) / (hi - lo) * (b - a);
    let ticks = [];
    if (log) {  // powers of ten; within one decade, 1-2-5 steps; else the ends
      for (let p = Math.floor(lo); p <= Math.ceil(hi); p++) {
        for (const m of (hi - lo < 1.5 ? [1, 2, 5] : [1])) {
          const t = m * Math.pow(10, p);
          if (Math.log10(t) >= lo && Math.log10(t) <= hi) ticks.push(t);
        }
      }
      if (ticks.length < 2) ticks = [Math.pow(10, lo + pad), Math.pow(10, hi - pad)].map(t => +t.toPrecision(2));
    } else {
      const raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
      for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(+t.toPrecision(12));
    }
    return {f, ticks};
  }
  function frame(svg, W, H, m, xs, ys, xl, yl) {
    el("rect", {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, fill: "none", stroke: "#999"}, svg);
    if (xs) for (const t of xs.ticks) {
      const x = xs.f(t);
      el("line", {x1: x, x2: x, y1: m.t, y2: H - m.b, stroke: "#eee"}, svg);
      el("text", {x: x, y: H - m.b + 13, "text-anchor": "middle", "font-size": 10}, svg, fmt(t));
    }
    if (ys) for (const t of ys.ticks) {
      const y = ys.f(t);
      el("line", {x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: "#eee"}, svg);
      el("text", {x: m.l - 4, y: y + 3, "text-anchor": "end", "font-size": 10}, svg, fmt(t));
    }
    if (xl) el("text", {x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, class: "x-label"}, svg, xl);
    if (yl) el("text", {x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle", "font-size": 11,
      transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`}, svg, yl);
  }
  function title(svg, W, text) { el("text", {x: W / 2, y: 14, "text-anchor": "middle", "font-size": 12, "font-weight": 600}, svg, text); }
  function stats(vals) {
    const n = vals.length, mean = vals.reduce((a, b) => a + b, 0) / n;
    if (n < 2) return {n, mean, half: null};
    const sd = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    return {n, mean, half: (n - 1 <= 30 ? T975[n - 2] : 1.96) * sd / Math.sqrt(n)};
  }

  function strip(fig, spec) {
    const rows = spec.rows.filter(r => !state.hidden.has(r.method));
    const W = 620, m = {l: 220, r: 150, t: 22, b: 34}, H = m.t + m.b + Math.max(rows.length, 1) * 26;
    const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-kind": "strip"});
    title(svg, W, spec.title);
    const all = [];
    for (const r of rows) {
      all.push(...Object.values(r.values));
      if (r.paper !== null) all.push(r.paper - (r.paper_std || 0), r.paper + (r.paper_std || 0));
    }
    if (!all.length) {
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 11}, svg, "no finished seeds (or records of different configs, not averaged)");
      fig.appendChild(svg);
      return;
    }
    const s0 = scale(Math.min(...all), Math.max(...all), m.l, W - m.r, false);
    const xs = {ticks: s0.ticks, f: v => Math.max(m.l, Math.min(W - m.r, s0.f(v)))};  // an interval wider than the data ends at the frame
    frame(svg, W, H, m, xs, null, spec.x_label, null);
    rows.forEach((r, i) => {
      const y = m.t + 13 + i * 26, c = color(r.method), vals = Object.values(r.values);
      el("text", {x: m.l - 4, y: y + 4, "text-anchor": "end", "font-size": 10}, svg, r.label);
      Object.entries(r.values).forEach(([seed, v], j) => {
        const d = el("circle", {cx: xs.f(v), cy: y - 6 + (j % 5) * 3, r: 3, fill: c, "fill-opacity": 0.6, class: "seed"}, svg);
        el("title", {}, d, `seed ${seed}: ${fmt(v)}`);
      });
      if (vals.length) {
        const s = stats(vals);
        if (s.half !== null) el("line", {x1: xs.f(s.mean - s.half), x2: xs.f(s.mean + s.half), y1: y + 7, y2: y + 7, stroke: c, "stroke-width": 2}, svg);
        el("line", {x1: xs.f(s.mean), x2: xs.f(s.mean), y1: y + 2, y2: y + 12, stroke: c, "stroke-width": 2, class: "mean"}, svg);
      }
      if (r.paper !== null) {
        const px = xs.f(r.paper);
        if (r.paper_std) el("line", {x1: xs.f(r.paper - r.paper_std), x2: xs.f(r.paper + r.paper_std), y1: y, y2: y, stroke: "#b00"}, svg);
        const d = el("path", {d: `M${px} ${y - 5} L${px + 5} ${y} L${px} ${y + 5} L${px - 5} ${y} Z`, fill: "#b00", class: "paper"}, svg);
        el("title", {}, d, `paper (${r.statistic}): ${fmt(r.paper)}`);
      }
      const n = vals.length + (r.expected ? `/${r.expected}` : "");
      const f = Object.keys(r.failed || {}).length ? ` †${Object.keys(r.failed).length}` : "";
      el("text", {x: W - m.r + 4, y: y + 4, "font-size": 10}, svg, `${r.verdict || "–"} (n=${n}${f})`);
    });
    fig.appendChild(svg);
  }

  function scatter(fig, spec) {
    const key = state.x || Object.keys(spec.axes)[0], ax = spec.axes[key];
    const pts = spec.points.filter(p => !state.hidden.has(p.method) && p.x[key] !== null && (!ax.log || p.x[key] > 0));
    const W = 460, H = 320, m = {l: 52, r: 14, t: 22, b: 44};
    const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-kind": "scatter", "data-x": key});
    title(svg, W, spec.title);
    if (!pts.length) {
      frame(svg, W, H, m, null, null, ax.label, spec.y_label);
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 11}, svg, "no row has this cost");
    } else {
      const xs = scale(Math.min(...pts.map(p => p.x[key])), Math.max(...pts.map(p => p.x[key])), m.l, W - m.r, ax.log);
      const ys = scale(Math.min(...pts.map(p => p.y)), Math.max(...pts.map(p => p.y)), H - m.b, m.t, false);
      frame(svg, W, H, m, xs, ys, ax.label + (ax.lower_is_better ? " (lower is better)" : ""), spec.y_label);
      // the front among the points shown
      const shown = pts.map(p => [p.x[key], p.y]);
      const sign = ax.lower_is_better ? 1 : -1;
      const front = shown.map((a, i) => i).filter(i => !shown.some((b, j) => j !== i &&
        sign * b[0] <= sign * shown[i][0] && b[1] >= shown[i][1] && (sign * b[0] < sign * shown[i][0] || b[1] > shown[i][1])))
        .sort((i, j) => shown[i][0] - shown[j][0]);
      if (front.length > 1) el("polyline", {points: front.map(i => `${xs.f(shown[i][0])},${ys.f(shown[i][1])}`).join(" "),
        fill: "none", stroke: "#444", "stroke-dasharray": "4 3", class: "front"}, svg);
      pts.forEach((p, i) => {
        const d = el("circle", {cx: xs.f(p.x[key]), cy: ys.f(p.y), r: front.includes(i) ? 5 : 4, fill: color(p.method), class: "point"}, svg);
        el("title", {}, d, `${p.label}: ${fmt(p.y)} at ${fmt(p.x[key])}`);
        el("text", {x: xs.f(p.x[key]) + 6, y: ys.f(p.y) - 5, "font-size": 10}, svg, p.label);
      });
    }
    fig.appendChild(svg);
    const notes = [];
    if (ax.narrow) notes.push(`x: ${ax.narrow}`);
    for (const p of spec.points) if (p.x[key] === null && p.why[key]) notes.push(`${p.label}: ${p.why[key]}`);
    const cap = document.createElement("figcaption");
    cap.className = "why";
    cap.textContent = `x: ${ax.how}.` + (notes.length ? " " + notes.join("; ") : "");
    fig.appendChild(cap);
  }

  function lines(fig, spec) {
    const series = spec.series.filter(s => !state.hidden.has(s.method) && s.points.length);
    const small = fig.classList.contains("small");
    const W = small ? 360 : 460, H = small ? 200 : 300, m = {l: 52, r: 110, t: 22, b: 36};
    const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-kind": "lines"});
    title(svg, W, spec.title);
    const xsAll = [], ysAll = [];
    for (const s of series) for (const [x, y] of s.points.concat(s.seeds || [])) { xsAll.push(x); ysAll.push(y); }
    if (!xsAll.length) { el("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, svg, "nothing to show"); fig.appendChild(svg); return; }
    const xs = scale(Math.min(...xsAll), Math.max(...xsAll), m.l, W - m.r, !!spec.log_x);
    const ys = scale(Math.min(...ysAll), Math.max(...ysAll), H - m.b, m.t, false);
    frame(svg, W, H, m, xs, ys, spec.x_label, spec.y_label);
    series.forEach((s, k) => {
      const c = spec.series.length > 1 && new Set(spec.series.map(q => q.method)).size === 1 ? COLORS[k % COLORS.length] : color(s.method);
      el("polyline", {points: s.points.map(([x, y]) => `${xs.f(x)},${ys.f(y)}`).join(" "), fill: "none", stroke: c, "stroke-width": 1.5, class: "series", ...(s.dashed ? {"stroke-dasharray": "4 3"} : {})}, svg);
      for (const [x, y] of s.points) el("circle", {cx: xs.f(x), cy: ys.f(y), r: 2.5, fill: c}, svg);
      for (const [x, y] of s.seeds || []) el("circle", {cx: xs.f(x), cy: ys.f(y), r: 2, fill: c, "fill-opacity": 0.35}, svg);
      for (const mk of s.marks || []) {  // a chosen value (ring) or a row's own (square), titled
        const node = mk.shape === "square" ? el("rect", {x: xs.f(mk.x) - 5, y: ys.f(mk.y) - 5, width: 10, height: 10, fill: "none", stroke: c, "stroke-width": 1.5}, svg)
          : el("circle", {cx: xs.f(mk.x), cy: ys.f(mk.y), r: 6, fill: "none", stroke: c, "stroke-width": 2}, svg);
        el("title", {}, node, mk.title);
      }
      el("text", {x: W - m.r + 6, y: m.t + 12 + 13 * k, "font-size": 10, fill: c}, svg, s.label);
    });
    fig.appendChild(svg);
  }

  const KINDS = {strip, scatter, lines};
  function drawAll() {
    for (const fig of document.querySelectorAll("figure.plot")) {
      const spec = DATA.plots[fig.dataset.plot];
      fig.replaceChildren();
      if (!spec || !(spec.kind in KINDS)) throw new Error(`no plot spec for ${fig.dataset.plot}`);
      KINDS[spec.kind](fig, spec);
    }
  }
  function download(name, text, type) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], {type}));
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
  function csvRows() {
    const out = [["plot", "kind", "row", "method", "x_or_seed", "value"]];
    for (const [id, s] of Object.entries(DATA.plots)) {
      if (s.kind === "strip") for (const r of s.rows) {
        for (const [seed, v] of Object.entries(r.values)) out.push([id, "seed", r.label, r.method, seed, v]);
        if (r.paper !== null) out.push([id, "paper", r.label, r.method, "", r.paper]);
      }
      if (s.kind === "scatter") for (const p of s.points) for (const [k, x] of Object.entries(p.x)) out.push([id, k, p.label, p.method, x, p.y]);
      if (s.kind === "lines") for (const ser of s.series) for (const [x, y] of ser.points) out.push([id, "line", ser.label, ser.method, x, y]);
    }
    return out.map(r => r.map(c => /[",\n]/.test(String(c)) ? `"${String(c).replace(/"/g, '""')}"` : c).join(",")).join("\n") + "\n";
  }
  const xSel = document.getElementById("pareto-x");
  if (xSel) { state.x = xSel.value; xSel.addEventListener("change", () => { state.x = xSel.value; drawAll(); }); }
  for (const box of document.querySelectorAll(".method-filter")) {
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(box.value); else state.hidden.add(box.value);
      for (const d of document.querySelectorAll(`details.cell[data-method="${box.value}"]`)) d.hidden = !box.checked;
      drawAll();
    });
  }
  document.getElementById("download-json").addEventListener("click", () => download("plotted-data.json", JSON.stringify(DATA, null, 1), "application/json"));
  document.getElementById("download-csv").addEventListener("click", () => download("plotted-data.csv", csvRows(), "text/csv"));
  drawAll();
})();
