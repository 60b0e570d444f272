/* Growthwheel console: promotions and coupons.
 * - The promotion and coupon forms show only the fields of the chosen reward type / code mode
 *   (every field stays in the page, so the form works without this script).
 * - Catalogue pickers fill the SKU and category fields and the tryout cart (see pickers()).
 * - The coupon batch page draws its budget burn: discount spent per day, cumulative, against the
 *   money budget (or redemptions against the count budget). The data sits in
 *   <script type="application/json" id="burn-data"> (no inline script runs). */
(function () {
  "use strict";

  function toggle(selectId, attribute) {
    var select = document.getElementById(selectId);
    if (!select) { return; }
    var groups = document.querySelectorAll("[" + attribute + "]");
    function apply() {
      groups.forEach(function (group) {
        var off = group.getAttribute(attribute) !== select.value;
        group.hidden = off;
        group.style.display = off ? "none" : "";  /* .stack sets display, which beats [hidden] */
      });
    }
    select.addEventListener("change", apply);
    apply();
  }

  function money(symbol, value) {
    return symbol + Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function drawBurn() {
    var data = GW.readData("burn-data");
    var el = document.getElementById("chart-burn");
    if (!data || !el || !window.echarts) { return; }
    var chart = GW.chart(el);
    var byMoney = data.budget !== null || data.budget_count === null;
    var values = byMoney ? data.spent : data.redeemed;
    var budget = byMoney ? data.budget : data.budget_count;
    var fmt = byMoney ? function (v) { return money(data.symbol, v); }
                      : function (v) { return Number(v).toLocaleString(); };
    var line = {
      name: byMoney ? data.labels.spent : data.labels.redeemed,
      type: "line", step: "end", showSymbol: values.length < 40, areaStyle: { opacity: 0.15 }, data: values
    };
    if (budget !== null) {
      line.markLine = {
        silent: true, symbol: "none", lineStyle: { type: "dashed", color: "#c92a2a" },
        label: { formatter: (byMoney ? data.labels.budget : data.labels.budget_count) + " " + fmt(budget),
                 position: "insideEndTop" },
        data: [{ yAxis: budget }]
      };
    }
    chart.setOption({
      grid: { left: 80, right: 24, top: 36, bottom: 40 },
      legend: { top: 0 },
      tooltip: { trigger: "axis", valueFormatter: fmt },
      xAxis: { type: "category", data: data.days },
      yAxis: { type: "value", min: 0, max: budget !== null ? function (v) { return Math.max(v.max, budget); } : null,
               axisLabel: { formatter: fmt } },
      series: [line],
      graphic: data.days.length ? [] : [GW.emptyGraphic(data.labels.empty, "#868e96")]
    });
    el.setAttribute("data-points", String(data.days.length));
    el.setAttribute("data-last", data.days.length ? String(values[values.length - 1]) : "0");
    GW.resizeWith(chart);
  }

  /* Catalogue pickers: a search box with a <datalist> that HTMX fills from /promotions/picker.
   * Choosing an option adds it to the list field the box serves (data-picker-for), or puts the
   * product on the first empty line of the tryout cart with its list price (data-picker-cart). */
  function chosenOption(input) {
    var list = document.getElementById(input.getAttribute("list") || "");
    if (!list) { return null; }
    for (var i = 0; i < list.options.length; i += 1) {
      if (list.options[i].value === input.value) { return list.options[i]; }
    }
    return null;
  }

  function addToList(field, value) {
    var parts = field.value.split(/[,，;；\s]+/).filter(function (p) { return p; });
    if (parts.indexOf(value) < 0) { parts.push(value); }
    field.value = parts.join(", ");
  }

  function addToCart(form, option) {
    for (var i = 0; ; i += 1) {
      var sku = form.querySelector("[name=sku_" + i + "]");
      if (!sku) { return; }
      if (sku.value.trim()) { continue; }
      sku.value = option.value;
      var set = function (name, value) {
        var el = form.querySelector("[name=" + name + "_" + i + "]");
        if (el && !el.value.trim()) { el.value = value; }
      };
      set("price", option.getAttribute("data-price") || "");
      set("category", option.getAttribute("data-category") || "");
      set("qty", "1");
      return;
    }
  }

  function pickers() {
    document.querySelectorAll("input[data-picker-for], input[data-picker-cart]").forEach(function (input) {
      function choose() {
        var option = chosenOption(input);
        if (!option) { return; }
        var target = document.getElementById(input.getAttribute("data-picker-for") || "");
        var cart = document.getElementById(input.getAttribute("data-picker-cart") || "");
        if (target) { addToList(target, option.value); }
        if (cart) { addToCart(cart, option); }
        input.value = "";
      }
      input.addEventListener("change", choose);
      input.addEventListener("input", function (event) {
        if (!event.inputType || event.inputType === "insertReplacementText") { choose(); }
      });
      input.addEventListener("keydown", function (event) {  /* Enter picks, never submits */
        if (event.key === "Enter") { event.preventDefault(); choose(); }
      });
    });
  }

  function start() {
    pickers();
    toggle("promotion-type", "data-reward");
    toggle("coupon-kind", "data-kind");
    toggle("coupon-mode", "data-mode");
    drawBurn();
  }

  GW.onReady(start);
}());
