// Draws every <div data-chart="ID"> from the figure Django's json_script put in <script id="ID">.
// Figures are built on the server (monitoring/charts.py); no inline script, no eval (strict build).
(function () {
  "use strict";
  if (!window.Plotly) return;
  var config = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]
  };
  document.querySelectorAll("[data-chart]").forEach(function (div) {
    var source = document.getElementById(div.dataset.chart);
    if (!source) return;
    try {
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(div, figure.data, figure.layout, config);
    } catch (error) {
      // The summary and the table under the chart still carry everything.
      if (window.console) console.error("chart " + div.dataset.chart + ": " + error);
    }
  });
})();
