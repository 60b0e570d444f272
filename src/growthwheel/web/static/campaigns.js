/* Growthwheel console: a campaign's cumulative GMV against its target pace (linear inside each
 * phase). The data sits in <script type="application/json" id="campaign-data"> (no inline script
 * runs). */
(function () {
  "use strict";

  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function draw() {
    var holder = document.getElementById("campaign-data");
    var el = document.getElementById("chart-campaign");
    if (!holder || !el || !window.echarts) { return; }
    var data;
    try { data = JSON.parse(holder.textContent || "null"); } catch (e) { return; }
    if (!data) { return; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    if (still) { chart.setOption({ animation: false }); }
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
    window.addEventListener("resize", function () { chart.resize(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
