// The workbench's only script: sortable tables, the version slider, print buttons.
// Every page works without it (links and forms are real); this adds keyboard-friendly sugar.
(function () {
  "use strict";
  function cellValue(td) {
    var amount = td.querySelector("[data-amount]") || (td.hasAttribute("data-amount") ? td : null);
    var text = (amount ? amount.getAttribute("data-amount") : td.textContent).trim();
    var n = text.replace(/[$,\s]/g, "");
    if (/^[-+]?\d+(\.\d+)?$/.test(n)) return parseFloat(n);
    return text.toLowerCase();
  }
  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, index) {
      if (th.querySelector("a, button")) return;
      var button = document.createElement("button");
      button.type = "button"; button.className = "sort";
      button.textContent = th.textContent; th.textContent = "";
      th.appendChild(button); th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length === heads.length; });
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[index]), y = cellValue(b.cells[index]);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("input[data-autosubmit]").forEach(function (input) {
      var out = document.getElementById(input.id + "-out");
      input.addEventListener("input", function () {
        if (out) out.textContent = input.value;
        input.setAttribute("aria-valuetext", "version " + input.value + " of " + input.max);
      });
      input.addEventListener("change", function () { input.form.submit(); });
    });
  });
})();
