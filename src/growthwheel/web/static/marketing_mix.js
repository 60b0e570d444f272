/* Growthwheel console: the marketing-mix model's response curves. One line per channel (outcome
 * against the period's total spend), its 90 % band, and a marker at the spend the period had.
 * The data sits in <script type="application/json" id="mix-data"> (no inline script runs). */
(function () {
  "use strict";

  function at(points, x) {
    for (var i = 1; i < points.length; i++) {
      if (points[i][0] >= x) {
        var a = points[i - 1], b = points[i];
        var f = b[0] === a[0] ? 0 : (x - a[0]) / (b[0] - a[0]);
        return a[1] + f * (b[1] - a[1]);
      }
    }
    return points.length ? points[points.length - 1][1] : 0;
  }

  function draw() {
    var data = GW.readData("mix-data");
    var el = document.getElementById("chart-mix");
    if (!data || !el || !window.echarts) { return; }
    var chart = GW.chart(el);
    var palette = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452",
                   "#9a60b4", "#ea7ccc"];
    var series = [];
    data.series.forEach(function (s, n) {
      var color = palette[n % palette.length];
      series.push({ type: "line", name: s.name, data: s.points, showSymbol: false, smooth: true, color: color,
                    markPoint: { symbol: "circle", symbolSize: 9,
                                 data: [{ coord: [s.current, at(s.points, s.current)] }] } });
      series.push({ type: "line", name: s.name, data: s.points.map(function (p, i) { return [p[0], s.low[i]]; }),
                    showSymbol: false, smooth: true, color: color,
                    lineStyle: { type: "dashed", width: 1, opacity: 0.5 }, tooltip: { show: false } });
      series.push({ type: "line", name: s.name, data: s.points.map(function (p, i) { return [p[0], s.high[i]]; }),
                    showSymbol: false, smooth: true, color: color,
                    lineStyle: { type: "dashed", width: 1, opacity: 0.5 }, tooltip: { show: false } });
    });
    chart.setOption({
      grid: { left: 70, right: 20, top: 40, bottom: 50 },
      legend: { type: "scroll", top: 0, data: data.series.map(function (s) { return s.name; }) },
      tooltip: { trigger: "axis",
                 valueFormatter: function (v) { return Number(v).toLocaleString(undefined, { maximumFractionDigits: 1 }); } },
      xAxis: { type: "value", name: data.x, nameLocation: "middle", nameGap: 30 },
      yAxis: { type: "value", name: data.y },
      series: series
    });
    el.setAttribute("data-series", String(data.series.length));
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
}());
