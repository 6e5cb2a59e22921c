// The order form's running net total, updated while typing (without JavaScript the "add line" button
// re-renders it). Preliminary only: the order's figures are the orders service's.
(function () {
  "use strict";
  var form = document.querySelector("form.order-form");
  var out = document.getElementById("running-total");
  if (!form || !out) { return; }
  function num(v) { return Number(String(v || "").trim().replace(/\s/g, "").replace(",", ".")); }
  function update() {
    var total = 0, ok = true;
    form.querySelectorAll("fieldset.line").forEach(function (row) {
      var q = row.querySelector("input[name$='-quantity']"), p = row.querySelector("input[name$='-unit_price']");
      if (!q || !p || (!q.value && !p.value)) { return; }
      var line = num(q.value) * num(p.value);
      if (isNaN(line)) { ok = false; } else { total += line; }
    });
    var currency = (form.querySelector("[name='currency']") || {}).value || "EUR";
    out.textContent = ok ? new Intl.NumberFormat(document.documentElement.lang === "de" ? "de-DE" : "en-GB",
      { style: "currency", currency: currency }).format(total) : "–";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
}());
