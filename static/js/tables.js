// Sortable, filterable tables: any <table class="data-table"> sorts by a click
// on its header (numbers numerically, data-sort values first) and, with
// data-filter="true", gets a text filter above it. No server round trip.
(function () {
  "use strict";
  function cellValue(row, index) {
    const cell = row.cells[index];
    if (!cell) return "";
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  }
  const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?$/;
  function compare(a, b) {
    if (NUMBER.test(a) && NUMBER.test(b)) return parseFloat(a) - parseFloat(b);
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }
  function makeSortable(table) {
    const head = table.tHead;
    if (!head) return;
    Array.from(head.rows[0].cells).forEach(function (th, index) {
      if (th.dataset.nosort !== undefined) return;
      th.tabIndex = 0;
      th.addEventListener("click", function () {
        const body = table.tBodies[0];
        const rows = Array.from(body.rows).filter(function (r) { return r.cells.length > 1; });
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.from(head.rows[0].cells).forEach(function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        rows.sort(function (r1, r2) {
          const result = compare(cellValue(r1, index), cellValue(r2, index));
          return ascending ? result : -result;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function makeFilterable(table) {
    const input = document.createElement("input");
    input.type = "text";
    input.placeholder = "Filter rows…";
    input.className = "table-filter";
    input.setAttribute("aria-label", "Filter table rows");
    table.parentNode.insertBefore(input, table);
    input.addEventListener("input", function () {
      const needle = input.value.toLowerCase();
      Array.from(table.tBodies[0].rows).forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  }
  function init(root) {
    (root || document).querySelectorAll("table.data-table").forEach(function (table) {
      if (table.dataset.enhanced) return;
      table.dataset.enhanced = "1";
      makeSortable(table);
      if (table.dataset.filter === "true") makeFilterable(table);
    });
  }
  window.MlopsTables = { init: init };
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
