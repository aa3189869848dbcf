// Test probe, appended to a report page by chromium_test.go (not part of
// the page rljob writes): hovers the entropy chart at step 5 and reads the
// tooltip, moves the smoothing slider and reads it again, reads the drawn
// series, switches the x axis to rollouts seen, and writes what it found
// as JSON into body[data-probe] for the test to read from the dumped DOM.
window.addEventListener("load", function () {
  var out = {};
  try {
    var R = window.rljobReport;
    var find = function (id) { return R.plots.find(function (p) { return p.panel.id === id; }); };
    var hover = function (id, step) {
      var u = find(id).u, i = u.data[0].indexOf(step);
      var rect = u.over.getBoundingClientRect();
      var x = rect.left + u.valToPos(step, "x"), y = rect.top + u.valToPos(u.data[1][i], "y");
      u.over.dispatchEvent(new MouseEvent("mouseenter", { clientX: x, clientY: y, bubbles: true }));
      u.over.dispatchEvent(new MouseEvent("mousemove", { clientX: x, clientY: y, bubbles: true }));
      var tt = u.root.parentNode.querySelector(".tt");
      return {
        idx: u.cursor.idx, shown: tt.style.display, text: tt.textContent,
        rows: Array.prototype.map.call(tt.querySelectorAll("[data-series]"), function (r) { return [r.getAttribute("data-series"), +r.getAttribute("data-value")]; }),
      };
    };
    var drawn = function (id) {
      var u = find(id).u;
      return { labels: u.series.map(function (s) { return s.label; }), data: u.data };
    };
    out.rendered = +document.body.getAttribute("data-charts-rendered");
    out.flat = document.querySelectorAll("ul.flat li").length;
    out.entropy = drawn("entropy");
    out.reward = drawn("reward");
    out.hover = hover("entropy", 5);
    var slider = document.getElementById("smoothing");
    slider.value = "0.6";
    slider.dispatchEvent(new Event("input"));
    out.smoothing = document.body.getAttribute("data-smoothing");
    out.hoverSmoothed = hover("entropy", 5);
    out.entropySmoothed = drawn("entropy");
    R.setX("rollouts");
    out.entropyByRollouts = drawn("entropy");
    out.runRows = document.querySelectorAll("#run-table tbody tr").length;
    out.variedCells = document.querySelectorAll("#run-table td.varied").length;
    var filter = document.getElementById("sample-filter");
    filter.value = "p3";
    filter.dispatchEvent(new Event("input"));
    out.samplesShown = +document.getElementById("sample-table").getAttribute("data-shown");
    out.samplesTotal = document.querySelectorAll("#sample-table tbody tr").length;
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
  document.body.setAttribute("data-probe", JSON.stringify(out));
});
