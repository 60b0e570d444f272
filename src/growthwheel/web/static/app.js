/* Growthwheel console: draws the Overview charts from the JSON the page carries.
 * No inline handlers, no eval: the page's data sits in <script type="application/json">. */
(function () {
  "use strict";

  var PALETTE = ["#2f6fde", "#20a4a4", "#f59f00", "#e8590c", "#7048e8", "#2b8a3e",
                 "#c2255c", "#1098ad", "#868e96", "#5c940d", "#d6336c", "#364fc7"];
  var charts = [];
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function readData(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent || "null"); } catch (e) { return null; }
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function money(symbol, value) {
    var n = Number(value || 0);
    return symbol + n.toLocaleString(undefined, { minimumFractionDigits: 0, maximumFractionDigits: 0 });
  }

  function init(id) {
    var el = document.getElementById(id);
    if (!el || !window.echarts) { return null; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    if (still) { chart.setOption({ animation: false }); }
    charts.push(chart);
    return chart;
  }

  function emptyGraphic(text) {
    return { type: "text", left: "center", top: "middle",
             style: { text: text, fill: "#66727f", fontSize: 14 } };
  }

  function drawTrend(data) {
    var chart = init("chart-trend");
    if (!chart) { return; }
    var L = data.labels, T = data.trend;
    chart.setOption({
      color: ["#2f6fde", "#f59f00"],
      tooltip: { trigger: "axis" },
      legend: { data: [L.gmv, L.orders], top: 0 },
      grid: { left: 64, right: 48, top: 36, bottom: 32 },
      xAxis: { type: "category", data: T.periods, axisTick: { alignWithLabel: true } },
      yAxis: [
        { type: "value", name: L.gmv, axisLabel: { formatter: function (v) { return money(data.currency, v); } } },
        { type: "value", name: L.orders, splitLine: { show: false }, minInterval: 1 }
      ],
      series: [
        { name: L.gmv, type: "bar", data: T.gmv, barMaxWidth: 18,
          tooltip: { valueFormatter: function (v) { return money(data.currency, v); } } },
        { name: L.orders, type: "line", yAxisIndex: 1, data: T.orders, smooth: 0.3, symbolSize: 5 }
      ],
      graphic: T.periods.length ? [] : [emptyGraphic(L.empty)]
    });
  }

  function drawMix(id, items, data) {
    var chart = init(id);
    if (!chart) { return; }
    chart.setOption({
      color: PALETTE,
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return p.marker + esc(p.name) + ": " + esc(money(data.currency, p.value)) +
            " (" + esc(p.percent) + "%)";
        }
      },
      legend: { type: "scroll", orient: "vertical", right: 0, top: "middle" },
      series: [{
        name: id, type: "pie", radius: ["42%", "70%"], center: ["36%", "50%"],
        avoidLabelOverlap: true, label: { show: false },
        data: items.map(function (d) { return { name: d.name, value: d.value }; })
      }],
      graphic: items.length ? [] : [emptyGraphic(data.labels.empty)]
    });
  }

  function drawCategories(data) {
    var chart = init("chart-categories");
    if (!chart) { return; }
    var items = data.categories.slice(0, 12).reverse();
    chart.setOption({
      color: ["#20a4a4"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 valueFormatter: function (v) { return money(data.currency, v); } },
      grid: { left: 8, right: 24, top: 8, bottom: 24, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: function (v) { return money(data.currency, v); } } },
      yAxis: { type: "category", data: items.map(function (d) { return d.name; }) },
      series: [{ name: data.labels.gmv, type: "bar", barMaxWidth: 16,
                 data: items.map(function (d) { return d.value; }) }],
      graphic: items.length ? [] : [emptyGraphic(data.labels.empty)]
    });
  }

  function drawBuyers(data) {
    var chart = init("chart-buyers");
    if (!chart) { return; }
    var L = data.labels, T = data.trend;
    chart.setOption({
      color: ["#7048e8", "#20a4a4"],
      tooltip: { trigger: "axis" },
      legend: { data: [L.new, L.returning], top: 0 },
      grid: { left: 48, right: 24, top: 36, bottom: 32 },
      xAxis: { type: "category", data: T.periods },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: L.new, type: "bar", stack: "buyers", data: T.new, barMaxWidth: 18 },
        { name: L.returning, type: "bar", stack: "buyers", data: T.returning, barMaxWidth: 18 }
      ],
      graphic: T.periods.length ? [] : [emptyGraphic(L.empty)]
    });
  }

  function drawOverview() {
    var data = readData("overview-data");
    if (!data) { return; }
    drawTrend(data);
    drawMix("chart-channels", data.channels, data);
    drawCategories(data);
    drawBuyers(data);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (resizeTimer) { window.clearTimeout(resizeTimer); }
    resizeTimer = window.setTimeout(function () {
      charts.forEach(function (c) { c.resize(); });
    }, 120);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawOverview);
  } else {
    drawOverview();
  }
})();
