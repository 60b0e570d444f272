/* Growthwheel console, survey page: NPS by period with its confidence interval as a band.
 * No inline handlers, no eval: the data sits in <script type="application/json" id="nps-data">. */
(function () {
  "use strict";

  function draw() {
    var el = document.getElementById("chart-nps");
    var data = GW.readData("nps-data");
    if (!el || !data || !data.periods || !window.echarts) { return; }
    var zh = (document.documentElement.lang || "").indexOf("zh") === 0;
    var L = data.labels;
    // the band: an invisible base at the lower bound, the width stacked on top of it
    var width = data.high.map(function (v, i) { return v === null || data.low[i] === null ? null : v - data.low[i]; });
    var chart = GW.chart(el, {
      color: ["#2f6fde"],
      toolbox: { right: 4, top: 0, itemSize: 13, feature: { saveAsImage: {
        title: zh ? "下载图片" : "Download PNG", name: "nps", pixelRatio: 2, backgroundColor: "#fff" } } },
      tooltip: { trigger: "axis", formatter: function (items) {
        var i = items[0].dataIndex;
        return data.periods[i] + "<br>" + L.nps + ": " + data.nps[i] + "<br>" + L.band + ": " +
          data.low[i] + " ~ " + data.high[i] + "<br>" + L.n + ": " + data.n[i];
      } },
      legend: { data: [L.nps, L.band], top: 0 },
      grid: { left: 56, right: 32, top: 36, bottom: 32 },
      xAxis: { type: "category", data: data.periods, boundaryGap: false },
      yAxis: { type: "value", min: -100, max: 100, axisLabel: { formatter: function (v) { return v; } } },
      series: [
        { name: "base", type: "line", data: data.low, stack: "band", stackStrategy: "all",
          lineStyle: { opacity: 0 }, symbol: "none", silent: true },
        { name: L.band, type: "line", data: width, stack: "band", stackStrategy: "all",
          lineStyle: { opacity: 0 }, symbol: "none",
          areaStyle: { color: "rgba(47,111,222,0.18)" }, silent: true },
        { name: L.nps, type: "line", data: data.nps, symbolSize: 6, lineStyle: { width: 2 } }
      ]
    });
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
}());
