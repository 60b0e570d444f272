/* Growthwheel console: the pieces every page script shares, as window.GW. The base template loads
 * this file (deferred) before any page script, so page scripts can use GW at once.
 * - GW.readData(id): the JSON a page carries in <script type="application/json" id="..."> (null if
 *   the block is missing or unreadable; no inline script runs, no eval).
 * - GW.still: the reader asked for reduced motion (charts then draw without animation).
 * - GW.chart(el): an ECharts instance on the element (or element id), animation off when GW.still;
 *   null when the element or ECharts is missing. GW.chart(el, option) draws the option at once with
 *   animation = !GW.still in the same call (a first call of its own would leave ECharts' default
 *   palette under a short `color` list: series past the first would change colour).
 * - GW.resizeWith(chart): the chart follows the window's size.
 * - GW.emptyGraphic(text, fill): the centred "no data" text of an empty chart.
 * - GW.esc(text): text made safe for an HTML tooltip.
 * - GW.onReady(fn): run fn once the document is parsed (at once if it already is). */
(function () {
  "use strict";

  var still = !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);

  function readData(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent || "null"); } catch (e) { return null; }
  }

  function chart(el, option) {
    var node = typeof el === "string" ? document.getElementById(el) : el;
    if (!node || !window.echarts) { return null; }
    var c = window.echarts.init(node, null, { renderer: "canvas" });
    if (option) {
      option.animation = !still;
      c.setOption(option);
    } else if (still) {
      c.setOption({ animation: false });
    }
    return c;
  }

  function resizeWith(c) {
    window.addEventListener("resize", function () { c.resize(); });
  }

  function emptyGraphic(text, fill) {
    return { type: "text", left: "center", top: "middle",
             style: { text: text, fill: fill || "#66727f", fontSize: 14 } };
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function onReady(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  window.GW = { readData: readData, still: still, chart: chart, resizeWith: resizeWith,
                emptyGraphic: emptyGraphic, esc: esc, onReady: onReady };
}());
