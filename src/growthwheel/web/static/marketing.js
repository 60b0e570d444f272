/* Growthwheel console: the attribution chart. One group of bars per channel, one bar per model
 * (conversions credited). The data sits in <script type="application/json" id="attribution-data">
 * (no inline script runs). */
(function () {
  "use strict";

  function draw() {
    var data = GW.readData("attribution-data");
    var el = document.getElementById("chart-attribution");
    if (!data || !el || !window.echarts) { return; }
    var chart = GW.chart(el);
    chart.setOption({
      grid: { left: 60, right: 20, top: 40, bottom: 60 },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 valueFormatter: function (v) { return Number(v).toLocaleString(undefined, { maximumFractionDigits: 1 }); } },
      xAxis: { type: "category", data: data.channels, axisLabel: { interval: 0, rotate: data.channels.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", name: data.label },
      series: data.series.map(function (s) {
        return { type: "bar", name: s.name, data: s.values, emphasis: { focus: "series" } };
      })
    });
    el.setAttribute("data-series", String(data.series.length));
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
}());
