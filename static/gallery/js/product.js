/* The product page: the interactive plot (image, spectrum or light curve) drawn with Plotly
 * from the JSON of /products/<uuid>/plot.json, and the copy button of the permanent link.
 * The page is complete without it: the preview image and the tables hold the same data. */
(function () {
  "use strict";

  var D2R = Math.PI / 180;
  var CONFIG = { responsive: true, displaylogo: false, scrollZoom: true };

  function part(root, role) {
    return root.querySelector('[data-role="' + role + '"]');
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Copy failed"; }
      );
    });
  });

  /* Pixel (0-based, down-sampled grid) to ICRS RA/Dec in degrees, for a TAN projection
   * (Calabretta & Greisen 2002): FITS pixels count from 1, and down-sampled pixel i covers
   * original pixels factor*i .. factor*i + factor - 1. */
  function pixelToWorld(wcs, factor, i, j) {
    var px = factor * i + (factor - 1) / 2 + 1;
    var py = factor * j + (factor - 1) / 2 + 1;
    var dx = px - wcs.crpix[0];
    var dy = py - wcs.crpix[1];
    var x = wcs.cd[0][0] * dx + wcs.cd[0][1] * dy;
    var y = wcs.cd[1][0] * dx + wcs.cd[1][1] * dy;
    var r = Math.sqrt(x * x + y * y);
    var phi = r === 0 ? 0 : Math.atan2(x, -y);
    var theta = Math.atan2(180 / Math.PI, r);
    var a0 = wcs.crval[0] * D2R;
    var d0 = wcs.crval[1] * D2R;
    var dphi = phi - wcs.lonpole * D2R;
    var st = Math.sin(theta), ct = Math.cos(theta);
    var lon = a0 + Math.atan2(-ct * Math.sin(dphi),
                              st * Math.cos(d0) - ct * Math.sin(d0) * Math.cos(dphi));
    var lat = Math.asin(Math.max(-1, Math.min(1,
                st * Math.sin(d0) + ct * Math.cos(d0) * Math.cos(dphi))));
    var v = [Math.cos(lat) * Math.cos(lon), Math.cos(lat) * Math.sin(lon), Math.sin(lat)];
    var m = wcs.to_icrs;
    var X = m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2];
    var Y = m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2];
    var Z = m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2];
    var ra = Math.atan2(Y, X) / D2R;
    if (ra < 0) ra += 360;
    return [ra, Math.asin(Math.max(-1, Math.min(1, Z))) / D2R];
  }

  function sexagesimal(value, hours) {
    var sign = value < 0 ? "-" : (hours ? "" : "+");
    var v = Math.abs(hours ? value / 15 : value);
    var a = Math.floor(v);
    var b = Math.floor((v - a) * 60);
    var c = ((v - a) * 60 - b) * 60;
    if (c >= 59.95) { c = 0; b += 1; }
    if (b >= 60) { b = 0; a += 1; }
    var pad = function (n, w) { var s = String(n); while (s.length < w) s = "0" + s; return s; };
    return sign + pad(a, 2) + ":" + pad(b, 2) + ":" + (c < 10 ? "0" : "") + c.toFixed(1);
  }

  function drawImage(panel, target, data) {
    var readout = part(panel, "readout");
    var marks = data.sources || [];
    var traces = [{
      type: "heatmap",
      z: data.z,
      zmin: data.zmin,
      zmax: data.zmax,
      colorscale: "Viridis",
      zsmooth: false,
      hoverinfo: "none",
      colorbar: { title: { text: data.unit || "" } }
    }];
    if (marks.length) {
      traces.push({
        type: "scatter",
        mode: "markers+text",
        x: marks.map(function (s) { return s.x; }),
        y: marks.map(function (s) { return s.y; }),
        text: marks.map(function (s) { return s.name; }),
        textposition: "top center",
        textfont: { color: "#ffffff" },
        marker: { symbol: "circle-open", size: 16, color: "#ffffff", line: { width: 2 } },
        hoverinfo: "text",
        showlegend: false
      });
    }
    var layout = {
      margin: { l: 50, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "pixel" }, constrain: "domain" },
      yaxis: { title: { text: "pixel" }, scaleanchor: "x", constrain: "domain" },
      dragmode: "pan",
      hovermode: "closest"
    };
    window.Plotly.newPlot(target, traces, layout, CONFIG).then(function () {
      target.on("plotly_hover", function (event) {
        var point = event.points && event.points[0];
        if (!point || point.data.type !== "heatmap") return;
        var i = point.x, j = point.y;
        var value = point.z;
        var text = "pixel (" + i + ", " + j + "): " +
          (value === null || value === undefined ? "no data" : Number(value).toFixed(2) + " " + (data.unit || ""));
        if (data.wcs) {
          var world = pixelToWorld(data.wcs, data.factor, i, j);
          text = "RA " + world[0].toFixed(4) + "° (" + sexagesimal(world[0], true) + "), Dec " +
            world[1].toFixed(4) + "° (" + sexagesimal(world[1], false) + ") — " + text;
        }
        readout.textContent = text;
        readout.setAttribute("data-ra", data.wcs ? pixelToWorld(data.wcs, data.factor, i, j)[0] : "");
        readout.setAttribute("data-dec", data.wcs ? pixelToWorld(data.wcs, data.factor, i, j)[1] : "");
        readout.setAttribute("data-i", i);
        readout.setAttribute("data-j", j);
        readout.setAttribute("data-value", value === null || value === undefined ? "" : value);
      });
    });
    var form = part(panel, "colour-scale");
    if (form) {
      form.elements.zmin.value = data.zmin;
      form.elements.zmax.value = data.zmax;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var lo = parseFloat(form.elements.zmin.value);
        var hi = parseFloat(form.elements.zmax.value);
        if (isFinite(lo) && isFinite(hi) && lo < hi) {
          window.Plotly.restyle(target, { zmin: [lo], zmax: [hi] }, [0]);
          target.setAttribute("data-zmin", String(lo));
          target.setAttribute("data-zmax", String(hi));
        }
      });
      part(panel, "reset-scale").addEventListener("click", function () {
        form.elements.zmin.value = data.zmin;
        form.elements.zmax.value = data.zmax;
        window.Plotly.restyle(target, { zmin: [data.zmin], zmax: [data.zmax] }, [0]);
        target.setAttribute("data-zmin", String(data.zmin));
        target.setAttribute("data-zmax", String(data.zmax));
      });
    }
  }

  function drawSpectrum(target, data) {
    var fits = data.fits || [];
    var preferred = fits.filter(function (f) { return f.preferred; })[0] || fits[0];
    var used = preferred ? preferred.used : [];
    function pick(values, wanted) {
      return values.map(function (v, k) {
        var isUsed = used.length ? used[k] : true;
        return isUsed === wanted ? v : null;
      });
    }
    var traces = [
      {
        name: "data (fitted)", type: "scatter", mode: "markers",
        x: data.energy_kev, y: pick(data.rate_per_kev, true),
        error_x: { type: "data", array: data.half_width_kev, thickness: 1, width: 0 },
        error_y: { type: "data", array: data.error_per_kev, thickness: 1, width: 0 },
        marker: { size: 4, color: "#0b5cad" }
      },
      {
        name: "data (not fitted)", type: "scatter", mode: "markers",
        x: data.energy_kev, y: pick(data.rate_per_kev, false),
        error_y: { type: "data", array: data.error_per_kev, thickness: 1, width: 0 },
        marker: { size: 4, color: "#8c959f" }
      }
    ];
    fits.forEach(function (fit) {
      if (!fit.model_per_kev.length) return;
      traces.push({
        name: fit.model + (fit.reduced_chi2 ? " (χ²/dof " + fit.reduced_chi2.toFixed(2) + ")" : ""),
        type: "scatter", mode: "lines", line: { shape: "hvh", dash: fit === preferred ? "solid" : "dash" },
        x: data.energy_kev, y: fit.model_per_kev
      });
    });
    if (preferred && preferred.residuals.length) {
      traces.push({
        name: "residuals (" + preferred.model + ")", type: "scatter", mode: "markers",
        x: data.energy_kev, y: preferred.residuals, xaxis: "x", yaxis: "y2",
        marker: { size: 4, color: "#6b4b00" }, showlegend: false
      });
    }
    var layout = {
      margin: { l: 60, r: 10, t: 10, b: 45 },
      xaxis: { type: "log", title: { text: "energy (keV)" } },
      yaxis: { type: "log", title: { text: "counts s⁻¹ keV⁻¹" }, domain: [0.3, 1] },
      yaxis2: { title: { text: "residual (σ)" }, domain: [0, 0.24], zeroline: true },
      legend: { orientation: "h", y: 1.08 }
    };
    return window.Plotly.newPlot(target, traces, layout, CONFIG);
  }

  function drawLightcurve(target, data) {
    function only(upper) {
      return data.flux.map(function (v, k) { return Boolean(data.upper_limit[k]) === upper ? v : null; });
    }
    var hover = data.t_mid_ijd.map(function (t) { return "IJD " + t.toFixed(5); });
    var traces = [
      {
        name: "flux", type: "scatter", mode: "markers",
        x: data.t_mid_utc, y: only(false), text: hover,
        error_y: { type: "data", array: data.error, thickness: 1, width: 0 },
        marker: { size: 5, color: "#0b5cad" }
      }
    ];
    if (data.upper_limit.some(Boolean)) {
      traces.push({
        name: "upper limit", type: "scatter", mode: "markers", x: data.t_mid_utc, y: only(true),
        text: hover, marker: { symbol: "triangle-down", size: 7, color: "#8c959f" }
      });
    }
    var layout = {
      margin: { l: 60, r: 10, t: 10, b: 45 },
      xaxis: { type: "date", title: { text: "time (UTC)" } },
      yaxis: { title: { text: data.unit || "flux" } },
      showlegend: traces.length > 1
    };
    return window.Plotly.newPlot(target, traces, layout, CONFIG);
  }

  var panel = document.querySelector("[data-plot-url]");
  if (!panel) return;
  var status = part(panel, "plot-status");
  var target = part(panel, "plot");
  if (!window.Plotly) {
    status.textContent = "The interactive plot could not be loaded; the preview above shows the data.";
    return;
  }
  fetch(panel.getAttribute("data-plot-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then(function (data) {
      if (data.kind === "image") drawImage(panel, target, data);
      else if (data.kind === "spectrum") drawSpectrum(target, data);
      else if (data.kind === "lightcurve") drawLightcurve(target, data);
      else {
        target.hidden = true;
        status.textContent = data.message || "Nothing to draw.";
        return;
      }
      // Read by the browser tests (and handy when debugging).
      target.setAttribute("data-traces", String(target.data ? target.data.length : 0));
      panel.setAttribute("data-drawn", data.kind);
      status.textContent = "Drag to pan or zoom (see the tool bar), scroll to zoom, double-click to reset.";
    })
    .catch(function (error) {
      target.hidden = true;
      status.textContent = "The plot could not be drawn (" + error.message + ").";
    });
})();
