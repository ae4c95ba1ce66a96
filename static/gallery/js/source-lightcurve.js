/* The long-term light curve of a source, drawn from the light-curve endpoint of the API
 * (/api/v1/sources/<slug>/lightcurve?instrument=&e_min=&e_max=&bin=&format=json).
 * Without JavaScript, or when the service has nothing to give, the page says so and lists
 * the products themselves. */
(function () {
  "use strict";

  var panel = document.querySelector("[data-lightcurve-url]");
  if (!panel) return;
  var form = panel.querySelector('[data-role="lc-controls"]');
  var target = panel.querySelector('[data-role="lc-plot"]');
  var status = panel.querySelector('[data-role="lc-status"]');
  var bandSelect = form.elements.band;
  var allBands = Array.prototype.map.call(bandSelect.options, function (option) {
    return { value: option.value, text: option.textContent, instrument: option.getAttribute("data-instrument") };
  });

  function showBands(instrument, available) {
    var current = bandSelect.value;
    var bands = available && available.length
      ? available.filter(function (b) { return b.instrument === instrument; }).map(function (b) {
          return { value: b.e_min_kev + ":" + b.e_max_kev, text: b.e_min_kev + "–" + b.e_max_kev + " keV" };
        })
      : allBands.filter(function (b) { return b.instrument === instrument; });
    if (!bands.length) return;
    bandSelect.textContent = "";
    bands.forEach(function (b) {
      var option = document.createElement("option");
      option.value = b.value;
      option.textContent = b.text;
      option.selected = b.value === current;
      bandSelect.appendChild(option);
    });
  }

  function draw() {
    if (!window.Plotly) {
      status.textContent = "The light curve could not be drawn (the plotting library did not load).";
      return;
    }
    var params = new URLSearchParams();
    params.set("instrument", form.elements.instrument.value);
    var band = (bandSelect.value || "").split(":");
    if (band.length === 2) {
      params.set("e_min", band[0]);
      params.set("e_max", band[1]);
    }
    params.set("bin", form.elements.bin.value);
    params.set("format", "json");
    status.textContent = "Loading the light curve…";
    fetch(panel.getAttribute("data-lightcurve-url") + "?" + params.toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (response.status === 404) return null;
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var points = data && data.points ? data.points : [];
        if (data && data.available) showBands(form.elements.instrument.value, data.available);
        if (!points.length) {
          window.Plotly.purge(target);
          target.hidden = true;
          status.textContent = "No light curve for these settings.";
          return;
        }
        target.hidden = false;
        var measured = points.filter(function (p) { return !p.upper_limit; });
        var limits = points.filter(function (p) { return p.upper_limit; });
        function trace(list, name, marker) {
          return {
            name: name, type: "scatter", mode: "markers", marker: marker,
            x: list.map(function (p) { return p.t_mid_utc; }),
            y: list.map(function (p) { return p.flux; }),
            error_y: { type: "data", array: list.map(function (p) { return p.error; }), thickness: 1, width: 0 },
            text: list.map(function (p) {
              return "IJD " + ((p.t_start_ijd + p.t_stop_ijd) / 2).toFixed(4) + ", " + p.n_points + " point(s)";
            })
          };
        }
        var traces = [trace(measured, "flux", { size: 5, color: "#0b5cad" })];
        if (limits.length) traces.push(trace(limits, "upper limit", { symbol: "triangle-down", size: 7, color: "#8c959f" }));
        window.Plotly.react(target, traces, {
          margin: { l: 60, r: 10, t: 10, b: 45 },
          xaxis: { type: "date", title: { text: "time (UTC)" } },
          yaxis: { title: { text: "flux (" + (data.flux_unit || "count/s") + ")" } },
          showlegend: limits.length > 0
        }, { responsive: true, displaylogo: false, scrollZoom: true });
        status.textContent = points.length + " bins (" + data.bin + "), " + data.e_min_kev + "–" +
          data.e_max_kev + " keV. Drag to zoom, double-click to reset.";
      })
      .catch(function (error) {
        target.hidden = true;
        status.textContent = "The light curve could not be loaded (" + error.message + ").";
      });
  }

  form.elements.instrument.addEventListener("change", function () {
    showBands(form.elements.instrument.value, null);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    draw();
  });
  showBands(form.elements.instrument.value, null);
  draw();
})();
