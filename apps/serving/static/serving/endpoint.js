// Endpoint page: keeps the traffic-split table current and sends the "try it" request.
(function () {
  "use strict";
  function csrfToken() {
    // The CSRF cookie is HttpOnly; the page carries the token instead.
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }
  function renderSplit(table, split) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    if (!split.length) {
      const row = document.createElement("tr");
      const empty = cell("Nothing deployed.", "muted");
      empty.colSpan = 4;
      row.appendChild(empty);
      body.appendChild(row);
      return;
    }
    split.forEach(function (item) {
      const row = document.createElement("tr");
      row.dataset.deployment = item.deployment_id;
      row.appendChild(cell(item.model + " v" + item.version));
      row.appendChild(cell(String(Math.round(item.traffic_weight * 10) / 10) + " %", "num"));
      const status = cell("");
      const badge = document.createElement("span");
      badge.className = "badge " + item.status;
      badge.textContent = item.status;
      status.appendChild(badge);
      row.appendChild(status);
      row.appendChild(cell(item.rollout_state));
      body.appendChild(row);
    });
  }
  function watchSplit(table) {
    function tick() {
      if (document.hidden) return;
      fetch(table.dataset.splitUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (body) { renderSplit(table, body.split); })
        .catch(function () {});
    }
    setInterval(tick, 2000);
  }
  function tryIt(form) {
    const result = document.getElementById("try-result");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      let body;
      try {
        body = JSON.parse(document.getElementById("try-body").value);
      } catch (err) {
        result.textContent = "Not valid JSON: " + err.message;
        return;
      }
      result.textContent = "Sending…";
      fetch(form.dataset.predictUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      })
        .then(function (r) { return r.json().then(function (json) { return [r.status, json]; }); })
        .then(function (pair) {
          result.className = pair[0] === 200 ? "" : "errors";
          result.textContent = "HTTP " + pair[0] + "\n" + JSON.stringify(pair[1], null, 2);
        })
        .catch(function (err) { result.textContent = "Request failed: " + err; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const table = document.getElementById("split-table");
    if (table) watchSplit(table);
    const form = document.getElementById("try-form");
    if (form) tryIt(form);
  });
})();
