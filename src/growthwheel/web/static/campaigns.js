/* Growthwheel console: a campaign's cumulative GMV against its target pace (linear inside each
 * phase). The data sits in <script type="application/json" id="campaign-data"> (no inline script
 * runs). */
(function () {
  "use strict";

  function draw() {
    var data = GW.readData("campaign-data");
    var el = document.getElementById("chart-campaign");
    if (!data || !el || !window.echarts) { return; }
    var chart = GW.chart(el);
    var series = [{ type: "line", name: data.names[0], data: data.actual, areaStyle: { opacity: 0.15 } }];
    if (data.expected.some(function (v) { return v !== null; })) {
      series.push({ type: "line", name: data.names[1], data: data.expected, lineStyle: { type: "dashed" } });
    }
    chart.setOption({
      grid: { left: 70, right: 20, top: 40, bottom: 40 },
      legend: { top: 0 },
      tooltip: { trigger: "axis",
                 valueFormatter: function (v) { return Number(v).toLocaleString(undefined, { maximumFractionDigits: 2 }); } },
      xAxis: { type: "category", data: data.days },
      yAxis: { type: "value" },
      series: series
    });
    el.setAttribute("data-series", String(series.length));
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
})();
