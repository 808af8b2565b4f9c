// Progress of long jobs. <div data-progress-url="/api/..." data-done="valid,invalid,finished,failed">
// polls the URL (JSON with "status", "progress" 0..1 and "progress_message") every second,
// fills .progress > div and [data-progress-text], and reloads the page once the status is terminal.
// Elements elsewhere on the page marked data-progress-field="status" (a badge), "started_at",
// "worker", … show the same poll's value of that field, so a header agrees with the progress.
// Bars start at their server-side value, <div class="progress"><div data-width="40">: a style
// attribute would be refused by the Content-Security-Policy, a style set from script is not.
(function () {
  "use strict";
  function watch(el) {
    const done = (el.dataset.done || "").split(",");
    const bar = el.querySelector(".progress > div");
    const text = el.querySelector("[data-progress-text]");
    const status = el.querySelector("[data-progress-status]");
    function tick() {
      fetch(el.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          const pct = Math.round(100 * (body.progress || 0));
          if (bar) bar.style.width = pct + "%";
          if (text) text.textContent = (body.progress_message || "") + " (" + pct + "%)";
          if (status) { status.textContent = body.status; status.className = "badge " + body.status; }
          document.querySelectorAll("[data-progress-field]").forEach(function (node) {
            const field = node.dataset.progressField;
            if (!(field in body)) return;
            const value = body[field];
            if (field === "status") { node.textContent = value; node.className = "badge " + value; return; }
            const when = typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value);
            node.textContent = value ? (when ? value.slice(0, 19).replace("T", " ") : String(value)) : "—";
          });
          if (done.indexOf(body.status) !== -1) { window.location.reload(); return; }
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    tick();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".progress > div[data-width]").forEach(function (bar) {
      bar.style.width = bar.dataset.width + "%";
    });
    document.querySelectorAll("[data-progress-url]").forEach(watch);
  });
})();
