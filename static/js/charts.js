// Plotly charts rendered from server-built figures, with the local plotly.js.
//   <div class="chart" data-plotly="fig-id"></div> {{ fig|json_script:"fig-id" }}
//   <div class="chart" data-plotly-src="/url/returning/figure.json" data-refresh="5"></div>
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false };
  function draw(el, fig) {
    const layout = Object.assign({ margin: { t: 40, r: 20, b: 50, l: 60 } }, fig.layout || {});
    window.Plotly.react(el, fig.data || [], layout, config);
    el.dataset.rendered = "1";
  }
  function load(el) {
    fetch(el.dataset.plotlySrc, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (fig) { draw(el, fig); })
      .catch(function (err) { el.dataset.error = String(err); });
  }
  function init(root) {
    (root || document).querySelectorAll("[data-plotly]").forEach(function (el) {
      const source = document.getElementById(el.dataset.plotly);
      if (source) draw(el, JSON.parse(source.textContent));
    });
    (root || document).querySelectorAll("[data-plotly-src]").forEach(function (el) {
      load(el);
      const every = parseFloat(el.dataset.refresh || "0");
      if (every > 0) setInterval(function () { if (!document.hidden) load(el); }, every * 1000);
    });
  }
  window.MlopsCharts = { init: init, draw: draw, load: load };
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
