// The experiment page's runs table: a column chooser for its param and metric
// columns (which ones are hidden is remembered per experiment in localStorage);
// the table scrolls sideways inside its card (.table-scroll).
(function () {
  "use strict";
  function storageKey(table) { return "runs-columns:" + (table.dataset.experiment || ""); }
  function readHidden(table) {
    try {
      const stored = JSON.parse(window.localStorage.getItem(storageKey(table)) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (err) { return []; }
  }
  function writeHidden(table, hidden) {
    try { window.localStorage.setItem(storageKey(table), JSON.stringify(hidden)); } catch (err) { /* private mode */ }
  }
  function apply(table, hidden) {
    const heads = Array.from(table.tHead.rows[0].cells);
    heads.forEach(function (th, index) {
      const column = th.dataset.column;
      if (!column) return;
      const hide = hidden.indexOf(column) !== -1;
      th.hidden = hide;
      Array.from(table.tBodies[0].rows).forEach(function (row) {
        if (row.cells.length === heads.length) row.cells[index].hidden = hide;
      });
    });
  }
  function init() {
    const table = document.getElementById("runs-table");
    const chooser = document.getElementById("column-chooser");
    if (!table || !chooser) return;
    let hidden = readHidden(table);
    chooser.querySelectorAll("input[type=checkbox][data-column]").forEach(function (box) {
      box.checked = hidden.indexOf(box.dataset.column) === -1;
      box.addEventListener("change", function () {
        hidden = hidden.filter(function (c) { return c !== box.dataset.column; });
        if (!box.checked) hidden.push(box.dataset.column);
        writeHidden(table, hidden);
        apply(table, hidden);
      });
    });
    const reset = chooser.querySelector("[data-columns-reset]");
    if (reset) reset.addEventListener("click", function () {
      hidden = [];
      writeHidden(table, hidden);
      chooser.querySelectorAll("input[type=checkbox][data-column]").forEach(function (b) { b.checked = true; });
      apply(table, hidden);
    });
    apply(table, hidden);
  }
  document.addEventListener("DOMContentLoaded", init);
})();
