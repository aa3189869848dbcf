// rljob report page: draws the report JSON (#rljob-report-data) with uPlot.
// Controls: x axis (step, rollouts seen, tokens, wall time: those the lake
// has), exponential smoothing (debiased EMA, as TensorBoard), run toggles.
// Each chart: hover tooltip, drag to zoom, double-click to reset, legend
// click toggles a series. window.rljobReport exposes the state for tests.
(function () {
  "use strict";
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("rljob-report-data").textContent);
  const XAXES = [
    ["step", "step"], ["rollouts", "train rollouts seen"], ["tokens", "train tokens seen"], ["wall_s", "wall time (s)"],
  ];
  const state = { x: "step", smooth: 0, hiddenRuns: {} };
  const plots = [];
  const runColor = {};
  D.runs.forEach((r, i) => { runColor[r] = D.colors[i] || "#333"; });
  const DASHES = [[], [6, 3], [2, 3], [8, 3, 2, 3], [1, 2]];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    kids.forEach((k) => k != null && e.append(k));
    return e;
  }

  function fmt(v) {
    if (v == null || Number.isNaN(v)) return "–";
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(+v.toPrecision(5));
  }

  // axisValue maps a run's step to the chosen x axis: the value at the last
  // step <= step that the axis has (0 before the first), null without axis.
  function axisValue(run, step) {
    if (state.x === "step") return step;
    const ax = D.axes[run];
    const arr = ax && ax[state.x];
    if (!arr) return null;
    let lo = 0, hi = ax.step.length - 1, i = -1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (ax.step[m] <= step) { i = m; lo = m + 1; } else hi = m - 1;
    }
    return i < 0 ? 0 : arr[i];
  }

  function availableAxes() {
    return XAXES.filter(([k]) => k === "step" || D.runs.some((r) => D.axes[r] && D.axes[r][k]));
  }

  // ema is the debiased exponential moving average with weight w.
  function ema(ys, w) {
    if (!(w > 0)) return ys.slice();
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y == null || !Number.isFinite(y)) { out[i] = y; continue; }
      last = last * w + (1 - w) * y;
      n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  // lineSeries returns a lines panel's curves: per visible run and metric,
  // x mapped to the chosen axis (last point kept per x) and raw y.
  function lineSeries(p) {
    const out = [];
    D.runs.forEach((run) => {
      if (state.hiddenRuns[run]) return;
      let taken = false;
      p.metrics.forEach((m, mi) => {
        const l = D.series[run] && D.series[run][m];
        if (!l || (p.first_of && taken)) return;
        taken = true;
        const xs = [], ys = [];
        for (let i = 0; i < l.x.length; i++) {
          const x = axisValue(run, l.x[i]);
          if (x == null) continue;
          if (xs.length && x <= xs[xs.length - 1]) { if (x === xs[xs.length - 1]) ys[ys.length - 1] = l.y[i]; continue; }
          xs.push(x); ys.push(l.y[i]);
        }
        if (!xs.length) return;
        const label = D.runs.length > 1 ? run + (multiMetric(p) ? " " + m : "") : m;
        out.push({ run, metric: m, label, color: runColor[run], dash: DASHES[mi % DASHES.length], xs, ys, n: l.n });
      });
    });
    return out;
  }

  // multiMetric: some run has more than one of the panel's metrics, so a
  // legend entry names the metric as well as the run.
  function multiMetric(p) {
    if (p.first_of) return false; // one curve per run; the notes say which metric
    return D.runs.some((r) => p.metrics.filter((m) => D.series[r] && D.series[r][m]).length > 1);
  }

  // align joins curves on the union of their x values (null where a curve
  // has no point), smoothing each curve first; raw values are kept aside.
  function align(curves, smooth) {
    const xset = new Set();
    curves.forEach((c) => c.xs.forEach((x) => xset.add(x)));
    const xs = Array.from(xset).sort((a, b) => a - b);
    const pos = new Map(xs.map((x, i) => [x, i]));
    const data = [xs], raw = [xs];
    curves.forEach((c) => {
      const sm = ema(c.ys, smooth);
      const col = new Array(xs.length).fill(null), rcol = new Array(xs.length).fill(null);
      c.xs.forEach((x, i) => { col[pos.get(x)] = sm[i]; rcol[pos.get(x)] = c.ys[i]; });
      data.push(col); raw.push(rcol);
    });
    return { data, raw };
  }

  function xLabel() { return (XAXES.find(([k]) => k === state.x) || XAXES[0])[1]; }

  // tooltipPlugin shows, at the cursor, x and each visible series' value
  // (drawn, and raw when smoothed).
  function tooltipPlugin(box, xname, getRaw) {
    const tt = el("div", { class: "tt" });
    box.append(tt);
    let hovered = false; // charts synced to the hovered one show no tooltip
    return {
      hooks: {
        init: (u) => {
          u.over.addEventListener("mouseenter", () => { hovered = true; });
          u.over.addEventListener("mouseleave", () => { hovered = false; tt.style.display = "none"; });
        },
        setCursor: (u) => {
          const i = u.cursor.idx;
          if (!hovered || i == null || u.cursor.left < 0) { tt.style.display = "none"; return; }
          tt.replaceChildren(el("div", { text: xname() + " " + fmt(u.data[0][i]) }));
          const raw = getRaw();
          let shown = 0;
          for (let s = 1; s < u.series.length; s++) {
            const v = u.data[s][i];
            if (!u.series[s].show || v == null) continue;
            const row = el("div", { "data-series": u.series[s].label, "data-value": String(v) },
              el("span", { class: "swatch", style: "background:" + u.series[s].stroke() }), " " + u.series[s].label + ": " + fmt(v));
            if (raw && raw[s][i] !== v) row.append(el("span", { class: "raw", text: " (raw " + fmt(raw[s][i]) + ")" }));
            tt.append(row);
            shown++;
          }
          tt.style.display = shown ? "block" : "none";
          const left = u.cursor.left + u.over.offsetLeft + 12;
          tt.style.left = Math.min(left, box.clientWidth - tt.offsetWidth - 4) + "px";
          tt.style.top = (u.cursor.top + u.over.offsetTop + 12) + "px";
        },
      },
    };
  }

  function chartWidth(box) { return Math.max(300, box.clientWidth - 12); }

  function makeLines(p, box) {
    const curves = lineSeries(p);
    if (!curves.length) { box.append(el("p", { class: "note", text: "no data for the runs shown" + (state.x !== "step" ? " on this x axis" : "") })); return; }
    const rec = { panel: p, curves, raw: null };
    const { data, raw } = align(curves, state.smooth);
    rec.raw = raw;
    const opts = {
      width: chartWidth(box), height: 220,
      cursor: { sync: { key: "x-" + state.x }, drag: { x: true, y: false } },
      scales: { x: { time: false } },
      axes: [{ label: xLabel(), size: 40 }, { label: p.ylabel || "", size: 56 }],
      series: [{ label: xLabel(), value: (u, v) => fmt(v) }].concat(curves.map((c) => ({
        label: c.label, stroke: c.color, width: 1.5, dash: c.dash, spanGaps: true,
        points: { show: c.xs.length <= 30 }, value: (u, v) => fmt(v),
      }))),
      legend: { live: true },
      plugins: [tooltipPlugin(box, xLabel, () => rec.raw)],
    };
    if (curves.length > 8) box.classList.add("many");
    rec.u = new uPlot(opts, data, box);
    plots.push(rec);
  }

  // makePassK draws pass@k against k (log2 x), one curve per run and
  // checkpoint; older checkpoints of a run are lighter.
  function makePassK(p, box) {
    const curves = (p.passk || []).filter((c) => !state.hiddenRuns[c.run]);
    if (!curves.length) { box.append(el("p", { class: "note", text: "no data for the runs shown" })); return; }
    const perRun = {};
    curves.forEach((c) => { (perRun[c.run] = perRun[c.run] || []).push(c); });
    const cs = curves.map((c) => {
      const list = perRun[c.run], j = list.indexOf(c);
      return { label: c.run + " @" + fmt(c.ckpt), color: runColor[c.run], alpha: 0.35 + 0.65 * (list.length === 1 ? 1 : j / (list.length - 1)), xs: c.k, ys: c.y };
    });
    const { data } = align(cs, 0);
    const rec = { panel: p, curves: cs, raw: null };
    rec.u = new uPlot({
      width: chartWidth(box), height: 220,
      scales: { x: { time: false, distr: 3, log: 2 } },
      axes: [{ label: "k", size: 40 }, { label: "pass@k", size: 56 }],
      series: [{ label: "k" }].concat(cs.map((c) => ({
        label: c.label, stroke: hexAlpha(c.color, c.alpha), width: 1.5, spanGaps: true, points: { show: true }, value: (u, v) => fmt(v),
      }))),
      plugins: [tooltipPlugin(box, () => "k", () => null)],
    }, data, box);
    if (cs.length > 8) box.classList.add("many");
    plots.push(rec);
  }

  function hexAlpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a.toFixed(2) + ")";
  }

  function renderPanels() {
    plots.forEach((r) => r.u && r.u.destroy());
    plots.length = 0;
    const main = document.getElementById("panels"), toc = document.getElementById("toc");
    main.replaceChildren();
    toc.replaceChildren();
    const groups = [];
    D.panels.forEach((p) => {
      let g = groups.find((x) => x.name === p.group);
      if (!g) groups.push((g = { name: p.group, panels: [] }));
      g.panels.push(p);
    });
    groups.forEach((g) => {
      const id = "group-" + g.name.replace(/[^a-z0-9]+/gi, "-");
      toc.append(el("a", { href: "#" + id, text: g.name + " (" + g.panels.length + ")" }));
      const sec = el("section", { id, class: "group" }, el("h2", { text: g.name }));
      const flat = g.panels.filter((p) => p.flat);
      if (flat.length) {
        sec.append(el("ul", { class: "flat", "data-flat": String(flat.length) },
          ...flat.map((p) => el("li", { "data-panel": p.id }, el("code", { text: p.flat }), p.group === "key charts" ? " (" + p.title + ")" : ""))));
      }
      const grid = el("div", { class: "grid" });
      sec.append(grid);
      main.append(sec);
      g.panels.filter((p) => !p.flat).forEach((p) => {
        const box = el("div", { class: "panel", id: "panel-" + p.id, "data-panel": p.id, "data-kind": p.kind },
          el("h3", { text: p.title }));
        (p.notes || []).forEach((n) => box.append(el("div", { class: "note", text: n })));
        grid.append(box);
        if (p.kind === "image") box.append(el("img", { alt: p.title, src: p.image || "" }));
        else if (p.kind === "passk") makePassK(p, box);
        else makeLines(p, box);
      });
    });
    document.body.setAttribute("data-charts-rendered", String(plots.length));
  }

  function setSmoothing(w) {
    state.smooth = w;
    plots.forEach((r) => {
      if (!r.panel.metrics) return;
      const { data, raw } = align(r.curves, w);
      r.raw = raw;
      r.u.setData(data, false);
      r.u.redraw();
    });
    document.body.setAttribute("data-smoothing", String(w));
  }

  // The controls' state survives a reload (a live page reloads itself) in
  // sessionStorage, per file.
  const KEY = "rljob-report:" + location.pathname;
  function saveState() {
    try { sessionStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* storage off */ }
  }
  function restoreState() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (!s) return;
      if (availableAxes().some(([k]) => k === s.x)) state.x = s.x;
      if (s.smooth >= 0 && s.smooth < 1) state.smooth = s.smooth;
      state.hiddenRuns = s.hiddenRuns || {};
    } catch (e) { /* storage off or stale */ }
  }

  function renderControls() {
    const c = document.getElementById("controls");
    const sel = el("select", { id: "xaxis" }, ...availableAxes().map(([k, label]) => el("option", { value: k, text: label })));
    sel.value = state.x;
    sel.addEventListener("change", () => { state.x = sel.value; saveState(); renderPanels(); });
    const slider = el("input", { id: "smoothing", type: "range", min: "0", max: "0.99", step: "0.01", value: String(state.smooth) });
    const out = el("output", { id: "smoothing-value", text: String(state.smooth) });
    slider.addEventListener("input", () => { out.textContent = slider.value; setSmoothing(+slider.value); saveState(); });
    c.append(el("label", {}, "x axis ", sel), el("label", {}, "smoothing ", slider, " ", out));
    const runs = el("span", { id: "run-toggles" });
    D.runs.forEach((r) => {
      const cb = el("input", { type: "checkbox", "data-run": r });
      cb.checked = !state.hiddenRuns[r];
      cb.addEventListener("change", () => { state.hiddenRuns[r] = !cb.checked; saveState(); renderPanels(); });
      runs.append(el("label", { class: "run" }, cb, el("span", { class: "swatch", style: "background:" + runColor[r] }), r));
    });
    c.append(runs, el("span", { class: "caption", text: "drag: zoom · double-click: reset · legend click: hide a series" }));
    if (D.refresh_s > 0) c.append(liveControl(D.refresh_s));
  }

  // liveControl reloads the page every n seconds (rljob report --watch
  // rewrites the file as steps commit), unless paused.
  function liveControl(n) {
    const cb = el("input", { type: "checkbox", id: "live" });
    cb.checked = true;
    setInterval(() => { if (cb.checked) { saveState(); location.reload(); } }, n * 1000);
    return el("label", { class: "caption", title: "rljob report --watch rewrites this file when a run commits a step" }, cb, " live: reload every " + n + " s");
  }

  // ---- run table ----
  function sortable(table, rows, cols) {
    let key = -1, dir = 1;
    const tbody = table.tBodies[0];
    Array.prototype.forEach.call(table.tHead.rows[0].cells, (th, ci) => {
      th.addEventListener("click", () => {
        dir = key === ci ? -dir : 1;
        key = ci;
        Array.prototype.forEach.call(table.tHead.rows[0].cells, (h) => h.classList.remove("sorted-asc", "sorted-desc"));
        th.classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
        const sorted = rows.slice().sort((a, b) => {
          const va = cols[ci].sort(a), vb = cols[ci].sort(b);
          if (typeof va === "number" && typeof vb === "number") return dir * (va - vb);
          return dir * String(va).localeCompare(String(vb), undefined, { numeric: true });
        });
        tbody.replaceChildren(...sorted.map((r) => r.tr));
      });
    });
  }

  function renderRuns() {
    const box = document.getElementById("runs");
    const rt = D.run_table || [];
    if (!rt.length) { box.append(el("p", { text: "no runs" })); return; }
    const varied = new Set(D.varied || []);
    const keyNames = [], cfgKeys = new Set();
    rt.forEach((r) => {
      (r.key || []).forEach((k) => { if (!keyNames.includes(k.name)) keyNames.push(k.name); });
      Object.keys(r.config || {}).forEach((k) => cfgKeys.add(k));
    });
    const cfg = Array.from(cfgKeys).sort((a, b) => (varied.has(b) - varied.has(a)) || a.localeCompare(b));
    const cols = [
      { h: "run", v: (r) => r.run, sort: (r) => r.run, cell: (r) => el("td", {}, el("span", { class: "swatch", style: "background:" + runColor[r.run] }), " " + r.run) },
      { h: "steps", v: (r) => r.steps, sort: (r) => r.steps, n: true },
      { h: "last step", v: (r) => r.last_step, sort: (r) => r.last_step, n: true },
      { h: "seed", v: (r) => r.seed || "", sort: (r) => r.seed || "", key: "seed" },
      { h: "device", v: (r) => r.device || "", sort: (r) => r.device || "" },
      { h: "dtype", v: (r) => r.dtype || "", sort: (r) => r.dtype || "" },
      { h: "job file", v: (r) => (r.job_files || []).join(", "), sort: (r) => (r.job_files || []).join(",") },
      { h: "job sha256", v: (r) => (r.job_sha256 || []).map((s) => s.slice(0, 12)).join(", "), sort: (r) => (r.job_sha256 || []).join(","), key: "job_sha256", title: (r) => (r.job_sha256 || []).join(", ") },
      { h: "rljob", v: (r) => r.rljob_version || "", sort: (r) => r.rljob_version || "" },
    ];
    keyNames.forEach((name) => {
      const get = (r) => (r.key || []).find((k) => k.name === name);
      cols.push({ h: name + ": first → last (best)", n: true, sort: (r) => { const k = get(r); return k ? k.last : -Infinity; },
        v: (r) => { const k = get(r); if (!k) return ""; return fmt(k.first) + " → " + fmt(k.last) + (k.best_of ? " (" + k.best_of + " " + fmt(k.best) + " @" + fmt(k.best_step) + ")" : ""); } });
    });
    cfg.forEach((k) => cols.push({ h: k, v: (r) => (r.config || {})[k] ?? "", sort: (r) => { const s = (r.config || {})[k] ?? ""; return s !== "" && !isNaN(+s) ? +s : s; }, key: k }));
    const thead = el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { class: varied.has(c.key) ? "varied" : "", title: varied.has(c.key) ? "differs between the runs" : "" , text: c.h }))));
    const rows = rt.map((r) => ({ r, tr: el("tr", { "data-run": r.run }, ...cols.map((c) => {
      if (c.cell) return c.cell(r);
      const td = el("td", { class: (c.n ? "num " : "") + (varied.has(c.key) ? "varied" : ""), text: String(c.v(r)) });
      if (c.title) td.title = c.title(r);
      return td;
    })) }));
    const table = el("table", { class: "data", id: "run-table" }, thead, el("tbody", {}, ...rows.map((x) => x.tr)));
    sortable(table, rows.map((x) => ({ tr: x.tr, r: x.r })), cols.map((c) => ({ sort: (row) => num0(c.sort(row.r)) })));
    function num0(v) { return v == null ? "" : v; }
    if (varied.size) box.append(el("p", { class: "caption", text: "highlighted: arguments that differ between the runs (" + Array.from(varied).join(", ") + ")" }));
    box.append(el("div", { class: "scroll" }, table));
  }

  // ---- samples ----
  function renderSamples() {
    const box = document.getElementById("samples");
    const S = D.samples || [];
    if (!S.length) { box.append(el("p", { text: "no scored train rollouts for these runs" })); return; }
    const q = el("input", { id: "sample-filter", type: "search", placeholder: "filter: prompt id or text" });
    const runSel = el("select", { id: "sample-run" }, el("option", { value: "", text: "all runs" }), ...D.runs.map((r) => el("option", { value: r, text: r })));
    const stepSel = el("select", { id: "sample-step" }, el("option", { value: "", text: "first and latest step" }), el("option", { value: "first", text: "first step" }), el("option", { value: "latest", text: "latest step" }));
    if (S.some((s) => s.chosen)) stepSel.append(el("option", { value: "chosen", text: "chosen prompts (--prompt), every step" }));
    const count = el("span", { class: "caption" });
    box.append(el("div", { class: "samples-controls" }, q, runSel, stepSel, count));
    const lim = {};
    S.forEach((s) => { const l = (lim[s.run] = lim[s.run] || { lo: s.step, hi: s.step }); l.lo = Math.min(l.lo, s.step); l.hi = Math.max(l.hi, s.step); });
    const cols = ["run", "step", "prompt id", "#", "prompt", "completion", "reward", "advantage", "correct", "verifier", "finish"];
    const rows = S.map((s) => ({ s, tr: el("tr", { "data-run": s.run, "data-step": String(s.step) },
      el("td", {}, el("span", { class: "swatch", style: "background:" + runColor[s.run] }), " " + s.run),
      el("td", { class: "num", text: String(s.step) }), el("td", { text: s.prompt_id }), el("td", { class: "num", text: String(s.sample_idx) }),
      el("td", {}, el("pre", { text: s.prompt })), el("td", {}, el("pre", { text: s.completion })),
      el("td", { class: "num", text: fmt(s.reward) }), el("td", { class: "num", text: fmt(s.advantage) }),
      el("td", { text: s.correct == null ? "–" : s.correct ? "✓" : "✗" }), el("td", { text: s.verifier }), el("td", { text: s.finish_reason })) }));
    const table = el("table", { class: "data", id: "sample-table" }, el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { text: c })))), el("tbody", {}, ...rows.map((r) => r.tr)));
    const keyOf = [(s) => s.run, (s) => s.step, (s) => s.prompt_id, (s) => s.sample_idx, (s) => s.prompt, (s) => s.completion,
      (s) => s.reward ?? -Infinity, (s) => s.advantage ?? -Infinity, (s) => (s.correct ? 1 : 0), (s) => s.verifier, (s) => s.finish_reason];
    sortable(table, rows.map((r) => ({ tr: r.tr, r: r.s })), keyOf.map((f) => ({ sort: (row) => f(row.r) })));
    function apply() {
      const text = q.value.toLowerCase();
      let n = 0;
      rows.forEach(({ s, tr }) => {
        const ok = (!runSel.value || s.run === runSel.value) &&
          (!stepSel.value ? s.step === lim[s.run].lo || s.step === lim[s.run].hi
            : stepSel.value === "chosen" ? s.chosen : s.step === (stepSel.value === "first" ? lim[s.run].lo : lim[s.run].hi)) &&
          (!text || (s.prompt_id + "\n" + s.prompt + "\n" + s.completion).toLowerCase().includes(text));
        tr.style.display = ok ? "" : "none";
        n += ok;
      });
      count.textContent = n + " of " + rows.length + " rollouts";
      table.setAttribute("data-shown", String(n));
    }
    [q, runSel, stepSel].forEach((c) => c.addEventListener("input", apply));
    apply();
    box.append(el("div", { class: "scroll tall" }, table));
  }

  restoreState();
  renderControls();
  renderPanels();
  renderRuns();
  renderSamples();
  window.addEventListener("resize", () => plots.forEach((r) => r.u.setSize({ width: chartWidth(r.u.root.parentNode), height: 220 })));
  window.rljobReport = { data: D, plots, state, setSmoothing, ema, axisValue,
    setX: (k) => { state.x = k; document.getElementById("xaxis").value = k; renderPanels(); } };
  // data-render-ms: from navigation start to the charts drawn;
  // data-script-ms: this script's share (parse the JSON, draw).
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-script-ms", String(Math.round(performance.now() - t0)));
})();
