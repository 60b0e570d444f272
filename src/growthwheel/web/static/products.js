/* Growthwheel console: the product matrix. One point per product (revenue of the period on a log
 * axis against its gross-margin rate), coloured by its role, with the shop's margin rate as a line:
 * the quadrants read as traffic (high revenue, thin margin), profit (high revenue and margin),
 * niche margin (low revenue, high margin) and tail. The data sits in
 * <script type="application/json" id="roles-data"> (no inline script runs). */
(function () {
  "use strict";

  var esc = GW.esc;

  function draw() {
    var data = GW.readData("roles-data");
    var el = document.getElementById("chart-roles");
    if (!data || !el || !window.echarts) { return; }
    var chart = GW.chart(el);
    var series = data.series.map(function (s, n) {
      var one = { type: "scatter", name: s.name, data: s.points, color: s.color, symbolSize: 8 };
      if (n === 0 && data.shop_margin !== null) {
        one.markLine = { silent: true, symbol: "none", lineStyle: { type: "dashed", color: "#888" },
                         label: { formatter: data.shop_margin_label.replace(/[{}]/g, "") }, data: [{ yAxis: data.shop_margin }] };
      }
      return one;
    });
    chart.setOption({
      grid: { left: 70, right: 30, top: 40, bottom: 50 },
      legend: { type: "scroll", top: 0, data: data.series.map(function (s) { return s.name; }) },
      tooltip: { trigger: "item", formatter: function (p) {
        var v = p.value;
        return esc(p.seriesName) + "<br>" + esc(v[2]) + " " + esc(v[3]) + "<br>" +
          Number(v[0]).toLocaleString(undefined, { maximumFractionDigits: 0 }) + " · " + v[1] + "%";
      } },
      xAxis: { type: "log", name: data.x, nameLocation: "middle", nameGap: 30 },
      yAxis: { type: "value", name: data.y },
      series: series
    });
    el.setAttribute("data-series", String(data.series.length));
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
}());
