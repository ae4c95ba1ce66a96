/* Statistics: plots of the figures the page also lists in tables (from a JSON block). */
(function () {
  "use strict";

  var block = document.getElementById("statistics-data");
  if (!block || !window.Plotly) return;
  var stats = JSON.parse(block.textContent);
  var config = { responsive: true, displaylogo: false };

  var perYear = document.querySelector('[data-role="stats-per-year"]');
  if (perYear && stats.per_year.length) {
    window.Plotly.newPlot(perYear, [
      { name: "products", type: "bar", x: stats.per_year.map(function (r) { return r.year; }),
        y: stats.per_year.map(function (r) { return r.n; }), marker: { color: "#0b5cad" } },
      { name: "sources seen", type: "scatter", mode: "lines+markers", yaxis: "y2",
        x: stats.sources_per_year.map(function (r) { return r.year; }),
        y: stats.sources_per_year.map(function (r) { return r.n; }), marker: { color: "#b35900" } }
    ], {
      margin: { l: 60, r: 60, t: 10, b: 40 },
      xaxis: { title: { text: "year of observation" }, dtick: 1 },
      yaxis: { title: { text: "products" } },
      yaxis2: { title: { text: "sources" }, overlaying: "y", side: "right", rangemode: "tozero" },
      legend: { orientation: "h", y: 1.1 }
    }, config);
  }

  var delays = document.querySelector('[data-role="stats-delays"]');
  if (delays && stats.delays.length) {
    var revs = stats.delays.map(function (r) { return r.revolution; });
    window.Plotly.newPlot(delays, [
      { name: "first product", type: "scatter", mode: "markers", x: revs,
        y: stats.delays.map(function (r) { return r.first_days; }), marker: { size: 5, color: "#0b5cad" } },
      { name: "last product", type: "scatter", mode: "markers", x: revs,
        y: stats.delays.map(function (r) { return r.last_days; }), marker: { size: 5, color: "#b35900" } }
    ], {
      margin: { l: 60, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "revolution" } },
      yaxis: { title: { text: "days after the observation" } },
      legend: { orientation: "h", y: 1.1 }
    }, config);
  }
})();
