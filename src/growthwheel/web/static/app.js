/* Growthwheel console: draws the Overview and insight charts from the JSON the page carries.
 * No inline handlers, no eval: the page's data sits in <script type="application/json">. */
(function () {
  "use strict";

  var PALETTE = ["#2f6fde", "#20a4a4", "#f59f00", "#e8590c", "#7048e8", "#2b8a3e",
                 "#c2255c", "#1098ad", "#868e96", "#5c940d", "#d6336c", "#364fc7"];
  var charts = [];
  var readData = GW.readData, esc = GW.esc, emptyGraphic = GW.emptyGraphic;

  function money(symbol, value) {
    var n = Number(value || 0);
    return symbol + n.toLocaleString(undefined, { minimumFractionDigits: 0, maximumFractionDigits: 0 });
  }

  function init(id) {
    var chart = GW.chart(id);
    if (!chart) { return null; }
    // every chart downloads as PNG (ECharts' own toolbox, vendored: no CDN)
    var zh = (document.documentElement.lang || "").indexOf("zh") === 0;
    chart.setOption({ toolbox: { right: 4, top: 0, itemSize: 13, feature: { saveAsImage: {
      title: zh ? "下载图片" : "Download PNG", name: id, pixelRatio: 2, backgroundColor: "#fff" } } } });
    charts.push(chart);
    return chart;
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
    openOnClick(chart, items);
  }

  // a slice or bar with an href opens the customers behind it
  function openOnClick(chart, items) {
    chart.on("click", function (p) {
      var d = items[p.dataIndex];
      if (d && d.href && d.href.charAt(0) === "/") { window.location.href = d.href; }
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
    openOnClick(chart, items);
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

  function drawRfm() {
    var data = readData("rfm-data");
    if (!data) { return; }
    var chart = init("chart-rfm");
    if (!chart) { return; }
    var L = data.labels, scores = ["1", "2", "3", "4", "5"];
    var most = data.cells.reduce(function (m, c) { return Math.max(m, c[2]); }, 0);
    chart.setOption({
      tooltip: {
        position: "top",
        formatter: function (p) {
          return esc(L.r) + " " + esc(p.value[1] + 1) + " · " + esc(L.f) + " " + esc(p.value[0] + 1) +
            "<br>" + esc(L.customers) + ": " + esc(Number(p.value[2]).toLocaleString());
        }
      },
      grid: { left: 72, right: 24, top: 12, bottom: 84 },
      xAxis: { type: "category", data: scores, name: L.f, nameLocation: "middle", nameGap: 28,
               splitArea: { show: true } },
      yAxis: { type: "category", data: scores, name: L.r, nameLocation: "middle", nameGap: 40,
               splitArea: { show: true } },
      visualMap: { min: 0, max: Math.max(most, 1), calculable: false, orient: "horizontal",
                   left: "center", bottom: 0, itemHeight: 160,
                   inRange: { color: ["#eef3fc", "#2f6fde"] } },
      series: [{ name: L.customers, type: "heatmap", data: data.cells,
                 label: { show: true, formatter: function (p) { return Number(p.value[2]).toLocaleString(); } },
                 emphasis: { itemStyle: { borderColor: "#1c2a3a", borderWidth: 1 } } }]
    });
    if (data.links) {  // a cell opens the customers behind it
      chart.on("click", function (p) {
        var href = data.links[p.dataIndex];
        if (href && href.charAt(0) === "/") { window.location.href = href; }
      });
    }
  }

  function drawFunnel() {
    var data = readData("funnel-data");
    if (!data) { return; }
    var chart = init("chart-funnel");
    if (!chart) { return; }
    var L = data.labels, first = data.entrants[0] || 0;
    chart.setOption({
      color: PALETTE,
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var share = first ? (100 * p.value / first).toFixed(1) + "%" : "–";
          return p.marker + esc(p.name) + ": " + esc(Number(p.value).toLocaleString()) +
            "<br>" + esc(L.from_first) + ": " + esc(share);
        }
      },
      series: [{
        name: L.entrants, type: "funnel", sort: "none", left: "8%", width: "84%", top: 12, bottom: 12,
        minSize: "8%", gap: 2,
        label: { show: true, position: "inside", color: "#fff",
                 formatter: function (p) { return p.name + "\n" + Number(p.value).toLocaleString(); } },
        data: data.steps.map(function (name, i) { return { name: name, value: data.entrants[i] }; })
      }]
    });
    if (data.split) { drawFunnelSplit(data); }
  }

  function drawFunnelSplit(data) {
    var chart = init("chart-funnel-split");
    if (!chart) { return; }
    var split = data.split;
    var values = split.values.map(function (v) { return v === "(none)" ? data.labels.none : v; });
    chart.setOption({
      color: PALETTE,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { data: data.steps, top: 0 },
      grid: { left: 8, right: 24, top: 36, bottom: 24, containLabel: true },
      xAxis: { type: "category", data: values, axisLabel: { interval: 0, rotate: values.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1, name: data.labels.entrants },
      series: data.steps.map(function (name, i) {
        return { name: name, type: "bar", barMaxWidth: 22, data: split.series[i] };
      })
    });
  }

  function drawCohorts() {
    var data = readData("cohorts-data");
    if (!data) { return; }
    var chart = init("chart-cohorts");
    if (!chart) { return; }
    var L = data.labels;
    var unit = data.money ? "" : "%";
    var shown = function (v) {
      return data.money ? Number(v).toLocaleString(undefined, { maximumFractionDigits: 2 }) : v + unit;
    };
    // Period 0 is always 100%: the colour scale follows the later periods (period 0 saturates).
    var later = data.cells.reduce(function (m, c) { return c[0] > 0 ? Math.max(m, c[2]) : m; }, 0);
    if (data.money) { later = data.cells.reduce(function (m, c) { return Math.max(m, c[2]); }, 0); }
    chart.setOption({
      tooltip: {
        position: "top",
        formatter: function (p) {
          return esc(L.cohort) + " " + esc(data.cohorts[p.value[1]]) + " · " +
            esc(data.periods[p.value[0]]) + "<br>" + esc(L.retention) + ": " + esc(shown(p.value[2]));
        }
      },
      grid: { left: 96, right: 24, top: 12, bottom: 64 },
      xAxis: { type: "category", data: data.periods, splitArea: { show: true } },
      yAxis: { type: "category", data: data.cohorts, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: later > 0 ? later : 100, calculable: false, orient: "horizontal",
                   left: "center", bottom: 0, itemHeight: 160,
                   formatter: function (v) { return Math.round(v).toLocaleString() + unit; },
                   inRange: { color: ["#eef3fc", "#20a4a4", "#0b5d5d"] } },
      series: [{ name: L.retention, type: "heatmap", data: data.cells,
                 label: { show: data.periods.length <= 16,
                          formatter: function (p) { return shown(p.value[2]); } } }]
    });
  }

  function drawLifecycle() {
    var data = readData("lifecycle-data");
    if (!data) { return; }
    var chart = init("chart-lifecycle");
    if (!chart) { return; }
    chart.setOption({
      color: ["#7048e8"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 24, top: 12, bottom: 24, containLabel: true },
      xAxis: { type: "category", data: data.stages, axisLabel: { interval: 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: data.labels.customers, type: "bar", barMaxWidth: 36, data: data.counts,
                 label: { show: true, position: "top" } }]
    });
  }

  function drawHistogram(id, hist, name, color) {
    var chart = init(id);
    if (!chart) { return; }
    chart.setOption({
      color: [color],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 24, top: 16, bottom: 24, containLabel: true },
      xAxis: { type: "category", data: hist.labels, axisLabel: { rotate: hist.labels.length > 10 ? 40 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: name, type: "bar", barCategoryGap: "8%", data: hist.counts }]
    });
  }

  function drawClv() {
    var data = readData("clv-data");
    if (!data) { return; }
    drawHistogram("chart-clv", data.clv, data.labels.customers, "#2f6fde");
    drawHistogram("chart-p-alive", data.p_alive, data.labels.customers, "#20a4a4");
  }

  function drawAll() {
    drawClv();
    drawLifecycle();
    drawOverview();
    drawRfm();
    drawFunnel();
    drawCohorts();
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (resizeTimer) { window.clearTimeout(resizeTimer); }
    resizeTimer = window.setTimeout(function () {
      charts.forEach(function (c) { c.resize(); });
    }, 120);
  });

  GW.onReady(drawAll);
})();
