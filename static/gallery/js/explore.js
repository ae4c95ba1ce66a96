/* Explore: the Resolve button turns an object name into RA/Dec (local catalogue first) and
 * fills the position fields. The search itself is a plain form that works without it. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-resolve-url]");
  if (!form) return;
  var button = form.querySelector('[data-role="resolve"]');
  var status = form.querySelector('[data-role="resolve-status"]');
  button.hidden = false;

  function resolve() {
    var name = form.elements.name.value.trim();
    if (!name) {
      status.textContent = "Type an object name first.";
      form.elements.name.focus();
      return;
    }
    status.textContent = "Resolving " + name + "…";
    button.disabled = true;
    fetch(form.getAttribute("data-resolve-url") + "?" + new URLSearchParams({ name: name }).toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (!data.resolved) {
          status.textContent = data.message;
          return;
        }
        form.elements.ra.value = data.ra_deg.toFixed(5);
        form.elements.dec.value = data.dec_deg.toFixed(5);
        status.textContent = data.message + ": RA " + data.ra_deg.toFixed(4) + "°, Dec " + data.dec_deg.toFixed(4) + "°";
      })
      .catch(function (error) {
        status.textContent = "The name could not be resolved (" + error.message + ").";
      })
      .then(function () { button.disabled = false; });
  }

  button.addEventListener("click", resolve);
  form.elements.name.addEventListener("change", function () {
    // A new name replaces the position of the previous one.
    form.elements.ra.value = "";
    form.elements.dec.value = "";
    status.textContent = "";
  });
})();
