// Test probe for a live page (refresh_s set), inserted by chromium_test.go
// before the page's own script: stores the controls' state as a previous
// load of this file would have (x axis rollouts seen, smoothing 0.5, run b
// hidden), so that the page must restore it. The test reads the controls.
sessionStorage.setItem("rljob-report:" + location.pathname,
  JSON.stringify({ x: "rollouts", smooth: 0.5, hiddenRuns: { b: true } }));
window.addEventListener("load", function () {
  var R = window.rljobReport, ent = R.plots.find(function (p) { return p.panel.id === "entropy"; });
  document.body.setAttribute("data-restored", JSON.stringify({
    x: document.getElementById("xaxis").value,
    smooth: document.getElementById("smoothing").value,
    b: document.querySelector('#run-toggles input[data-run="b"]').checked,
    labels: ent.u.series.map(function (s) { return s.label; }),
    live: !!document.getElementById("live"),
  }));
});
