/* Growthwheel console: the experiment results chart. Each row is one metric × variant: a dot at the
 * estimated relative change and a bar over its confidence interval, with zero marked. The data sits
 * in <script type="application/json" id="effects-data"> (no inline script runs). */
(function () {
  "use strict";

  var GOOD = "#2b8a3e", NEUTRAL = "#868e96", GUARD = "#e8590c";

  function pct(v) {
    if (v === null || v === undefined) { return "–"; }
    return (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + "%";
  }

  function draw() {
    var data = GW.readData("effects-data");
    var el = document.getElementById("chart-effects");
    if (!data || !el || !window.echarts) { return; }
    var rows = (data.rows || []).filter(function (r) { return r.estimate !== null && r.low !== null; });
    var chart = GW.chart(el);
    var labels = rows.map(function (r) { return r.label; });
    var color = function (r) { return r.significant ? (r.role === "guardrail" ? GUARD : GOOD) : NEUTRAL; };
    chart.setOption({
      grid: { left: 220, right: 40, top: 20, bottom: 40 },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var r = rows[p.dataIndex];
          return r.label + "<br>" + data.labels.effect + ": " + pct(r.estimate) +
            "<br>" + data.labels.interval + ": " + pct(r.low) + " … " + pct(r.high);
        }
      },
      xAxis: { type: "value", axisLabel: { formatter: function (v) { return pct(v); } },
               splitLine: { lineStyle: { type: "dashed" } } },
      yAxis: { type: "category", data: labels, inverse: true, axisTick: { show: false } },
      series: [{
        type: "custom",
        name: data.labels.effect,
        data: rows.map(function (r, i) { return [r.low, r.high, r.estimate, i]; }),
        encode: { x: [0, 1, 2], y: 3 },
        renderItem: function (params, api) {
          var r = rows[params.dataIndex];
          var y = api.value(3);
          var lo = api.coord([api.value(0), y]);
          var hi = api.coord([api.value(1), y]);
          var mid = api.coord([api.value(2), y]);
          var c = color(r);
          return { type: "group", children: [
            { type: "line", shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] },
              style: { stroke: c, lineWidth: 4, opacity: 0.6 } },
            { type: "circle", shape: { cx: mid[0], cy: mid[1], r: 6 }, style: { fill: c } }
          ] };
        },
        markLine: { silent: true, symbol: "none", data: [{ xAxis: 0 }],
                    lineStyle: { color: "#343a40", type: "solid" }, label: { show: false } }
      }]
    });
    el.setAttribute("data-rows", String(rows.length));
    GW.resizeWith(chart);
  }

  GW.onReady(draw);
}());
