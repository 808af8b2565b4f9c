// Plotly charts rendered from server-built figures, with the local plotly.js.
//   <div class="chart" data-plotly="fig-id"></div> {{ fig|json_script:"fig-id" }}
//   <div class="chart" data-plotly-src="/url/returning/figure.json" data-refresh="5"></div>
//
// Drawing is what makes a chart page slow, not the server: plotly.js (4.6 MB)
// is only fetched on a page that has a chart, once a chart comes near the
// viewport (a static file with long cache headers, so once per version), and
// each chart is drawn when it scrolls into view, one per animation frame.
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false };
  const script = document.currentScript;
  const bundle = script && script.dataset.plotlyBundle;
  let plotly = null;

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (plotly) return plotly;
    plotly = new Promise(function (resolve, reject) {
      const tag = document.createElement("script");
      tag.src = bundle;
      tag.async = true;
      tag.onload = function () { resolve(window.Plotly); };
      tag.onerror = function () { plotly = null; reject(new Error("plotly.js did not load")); };
      document.head.appendChild(tag);
    });
    return plotly;
  }

  const queue = [];
  let scheduled = false;
  function drawNext() {
    scheduled = false;
    const job = queue.shift();
    if (!job) return;
    try { job(); } catch (err) { window.console.error(err); }
    if (queue.length) { scheduled = true; window.requestAnimationFrame(drawNext); }
  }
  function enqueue(job) {
    queue.push(job);
    if (!scheduled) { scheduled = true; window.requestAnimationFrame(drawNext); }
  }

  function draw(el, fig) {
    return loadPlotly().then(function (Plotly) {
      return new Promise(function (resolve) {
        enqueue(function () {
          const layout = Object.assign({ margin: { t: 40, r: 20, b: 50, l: 60 } }, fig.layout || {});
          // Plots stored by older training runs may name WebGL traces, which
          // need eval (refused by the CSP): draw them as their SVG twins.
          const data = (fig.data || []).map(function (trace) {
            return trace.type === "scattergl" ? Object.assign({}, trace, { type: "scatter" }) : trace;
          });
          Promise.resolve(Plotly.react(el, data, layout, config)).then(function () {
            el.dataset.rendered = "1";
            resolve(el);
          });
        });
      });
    }).catch(function (err) { el.dataset.error = String(err); });
  }
  function load(el) {
    return fetch(el.dataset.plotlySrc, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (fig) { return draw(el, fig); })
      .catch(function (err) { el.dataset.error = String(err); });
  }
  function start(el) {
    if (el.dataset.plotly) {
      const source = document.getElementById(el.dataset.plotly);
      if (source) draw(el, JSON.parse(source.textContent));
      return;
    }
    load(el);
    const every = parseFloat(el.dataset.refresh || "0");
    if (every > 0) setInterval(function () { if (!document.hidden) load(el); }, every * 1000);
  }

  let observer = null;
  if ("IntersectionObserver" in window) {
    // A margin below the fold: the next chart is usually drawn before it is reached.
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        observer.unobserve(entry.target);
        start(entry.target);
      });
    }, { rootMargin: "200px 0px" });
  }
  function init(root) {
    (root || document).querySelectorAll("[data-plotly], [data-plotly-src]").forEach(function (el) {
      if (el.dataset.chartInit) return;
      el.dataset.chartInit = "1";
      if (observer) observer.observe(el); else start(el);
    });
  }
  window.MlopsCharts = { init: init, draw: draw, load: load };
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
