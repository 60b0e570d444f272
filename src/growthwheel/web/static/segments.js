/* Growthwheel console: the segment builder (nested all / any / none-of groups of conditions) with a
 * live count. It draws the builder from the JSON the page carries (#segment-builder-data), keeps the
 * definition in the save form's hidden field, and as the form changes posts the definition to the
 * preview endpoint (CSRF token in X-CSRF-Token) to show the count, a sample, or the errors next to
 * their fields. No inline handlers, no eval; every text goes in through textContent. */
(function () {
  "use strict";

  var data = null;
  var L = {};
  var root = null;
  var pending = null;
  var sequence = 0;

  var COMPARISONS = [">=", ">", "<=", "<", "=", "!=", "between"];
  var COMPARE_TEXT = { ">=": "≥", ">": ">", "<=": "≤", "<": "<", "=": "=", "!=": "≠" };
  var TEXT_SCORES = ["rfm_segment", "rfm_class", "lifecycle_stage"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function select(field, options, value, label) {
    var s = el("select", { "data-field": field, "aria-label": label || field });
    options.forEach(function (o) {
      var opt = el("option", { value: o.value, text: o.label });
      if (String(o.value) === String(value)) { opt.selected = true; }
      s.appendChild(opt);
    });
    if (data.readonly) { s.disabled = true; }
    return s;
  }

  function input(field, value, type, label) {
    var i = el("input", { type: type || "text", "data-field": field, "aria-label": label || field });
    i.value = value === undefined || value === null ? "" : String(value);
    if (data.readonly) { i.disabled = true; }
    return i;
  }

  function button(text, action) {
    var b = el("button", { type: "button", "data-action": action, text: text });
    return b;
  }

  function list(value) {
    return Array.isArray(value) ? value.join(", ") : (value === undefined || value === null ? "" : value);
  }

  function splitList(text) {
    return String(text).split(",").map(function (v) { return v.trim(); }).filter(function (v) { return v; });
  }

  function numberOrText(text) {
    var trimmed = String(text).trim();
    if (trimmed !== "" && isFinite(Number(trimmed))) { return Number(trimmed); }
    return trimmed;
  }

  // ---- drawing ------------------------------------------------------------------------------

  function comparisonOptions(withBetween) {
    return COMPARISONS.filter(function (op) { return withBetween || op !== "between"; })
      .map(function (op) { return { value: op, label: op === "between" ? L.op_between : COMPARE_TEXT[op] }; });
  }

  function windowFields(box, window) {
    var last = window && window.last ? window.last : "";
    var kind = window && window.last ? "last" : "all";
    box.appendChild(el("span", { "class": "sb-label", text: L.window }));
    box.appendChild(select("window", [{ value: "all", label: L.window_all }, { value: "last", label: L.window_last }],
                           kind, L.window));
    var n = input("window.last", last, "number", L.window_last);
    n.min = "1";
    var unit = select("window.unit", ["days", "weeks", "months"].map(function (u) {
      return { value: u, label: L["unit_" + u] };
    }), window && window.unit ? window.unit : "days", L.window);
    if (kind === "all") { n.hidden = true; unit.hidden = true; }
    box.appendChild(n);
    box.appendChild(unit);
  }

  function compareFields(box, cond, withBetween) {
    box.appendChild(select("op", comparisonOptions(withBetween), cond.op || ">=", L.op));
    var value = cond.op === "between" && Array.isArray(cond.value) ? cond.value.join(", ") : cond.value;
    box.appendChild(input("value", value === undefined ? "" : value, "text", L.value));
  }

  function attributeFields(box, cond) {
    var field = cond.field || "city";
    var kind = "text";
    data.attributes.forEach(function (a) { if (a.value === field) { kind = a.kind; } });
    box.appendChild(select("field", data.attributes, field, L.field));
    var ops = data.attribute_ops[kind];
    var op = ops.indexOf(cond.op) >= 0 ? cond.op : ops[0];
    box.appendChild(select("op", ops.map(function (o) { return { value: o, label: L["op_" + o] }; }), op, L.op));
    if (op === "is_set") { return; }
    if (op === "within") { windowFields(box, cond.window || { last: 30, unit: "days" }); return; }
    if (op === "between") {
      var v = Array.isArray(cond.value) ? cond.value : [null, null];
      box.appendChild(el("span", { "class": "sb-label", text: L.from }));
      box.appendChild(input("value.0", v[0] || "", "date", L.from));
      box.appendChild(el("span", { "class": "sb-label", text: L.to }));
      box.appendChild(input("value.1", v[1] || "", "date", L.to));
      return;
    }
    if (kind === "bool") {
      box.appendChild(select("value", [{ value: "true", label: L.yes }, { value: "false", label: L.no }],
                             cond.value === false ? "false" : "true", L.value));
      return;
    }
    var i = input("value", list(cond.value), kind === "date" && op !== "in" ? "date" : "text", L.value);
    if (op === "in") { i.placeholder = L.list_hint; }
    box.appendChild(i);
  }

  function ordersFields(box, cond) {
    box.appendChild(select("measure", ["count", "amount", "units"].map(function (m) {
      return { value: m, label: L["measure_" + m] };
    }), cond.measure || "count", L.measure));
    compareFields(box, cond, true);
    windowFields(box, cond.window);
    var cat = input("category", list(cond.category), "text", L.category);
    cat.placeholder = L.category;
    box.appendChild(cat);
    var ch = input("channel", list(cond.channel), "text", L.channel);
    ch.placeholder = L.channel;
    box.appendChild(ch);
  }

  function eventsFields(box, cond) {
    box.appendChild(select("event", data.events, cond.event || "view", L.event));
    compareFields(box, cond, true);
    windowFields(box, cond.window);
    var cat = input("category", list(cond.category), "text", L.category);
    cat.placeholder = L.category;
    box.appendChild(cat);
  }

  function tagFields(box, cond) {
    var tags = input("tags", list(cond.tags), "text", L.tags);
    tags.placeholder = L.tags;
    box.appendChild(tags);
    box.appendChild(select("match", [{ value: "any", label: L.match_any }, { value: "all", label: L.match_all }],
                           cond.match || "any", L.match));
  }

  function scoreFields(box, cond) {
    var field = cond.field || "rfm_segment";
    box.appendChild(select("field", data.scores, field, L.field));
    var ops = [{ value: "equals", label: L.op_equals }, { value: "in", label: L.op_in }];
    if (TEXT_SCORES.indexOf(field) < 0) { ops = ops.concat(comparisonOptions(true)); }
    var op = cond.op;
    if (!ops.some(function (o) { return o.value === op; })) { op = ops[0].value; }
    box.appendChild(select("op", ops, op, L.op));
    var i = input("value", list(cond.value), "text", L.value);
    if (op === "in" || op === "between") { i.placeholder = L.list_hint; }
    box.appendChild(i);
  }

  var FIELDS = { attribute: attributeFields, orders: ordersFields, events: eventsFields, tag: tagFields,
                 score: scoreFields };

  function drawFields(row, cond) {
    var box = row.querySelector(":scope > .sb-fields");
    box.textContent = "";
    FIELDS[cond.type](box, cond);
  }

  function conditionRow(cond) {
    var row = el("div", { "class": "sb-node sb-cond", "data-kind": "condition" });
    var head = el("div", { "class": "sb-head" });
    head.appendChild(select("type", ["attribute", "orders", "events", "tag", "score"].map(function (t) {
      return { value: t, label: L["type_" + t] };
    }), cond.type, L.condition_type));
    row.appendChild(head);
    row.appendChild(el("div", { "class": "sb-fields" }));
    if (!data.readonly) { row.appendChild(button(L.remove, "remove")); }
    drawFields(row, cond);
    return row;
  }

  function groupRow(kind, children, isRoot) {
    var group = el("div", { "class": "sb-node sb-group" + (isRoot ? " sb-root" : ""), "data-kind": "group" });
    var head = el("div", { "class": "sb-head" });
    head.appendChild(select("group", [
      { value: "all", label: L.group_all }, { value: "any", label: L.group_any },
      { value: "none", label: L.group_none }
    ], kind, L.group_all));
    if (!data.readonly) {
      head.appendChild(button(L.add_condition, "add-condition"));
      head.appendChild(button(L.add_group, "add-group"));
      if (!isRoot) { head.appendChild(button(L.remove, "remove")); }
    }
    group.appendChild(head);
    var box = el("div", { "class": "sb-children" });
    children.forEach(function (child) { box.appendChild(nodeRow(child)); });
    group.appendChild(box);
    return group;
  }

  /** A condition the builder cannot edit (a funnel drill-down): shown as a sentence, kept as it is. */
  function fixedRow(cond) {
    var row = el("div", { "class": "sb-node sb-cond sb-fixed", "data-kind": "fixed", "data-type": cond.type });
    row.fixedCondition = cond;
    var head = el("div", { "class": "sb-head" });
    head.appendChild(el("strong", {}, [document.createTextNode(L["type_" + cond.type] || cond.type)]));
    row.appendChild(head);
    if (cond.type === "funnel") {
      var values = { from: cond.from, to: cond.to, reached: cond.reached, steps: (cond.steps || []).length,
                     window: cond.window_days || 14 };
      var text = String(L[cond.exact === false ? "funnel_at_least" : "funnel_exact"] || "")
        .replace(/\{(\w+)\}/g, function (m, name) { return name in values ? String(values[name]) : m; });
      row.appendChild(el("div", { "class": "sb-fields muted" }, [document.createTextNode(text)]));
    }
    if (!data.readonly) { row.appendChild(button(L.remove, "remove")); }
    return row;
  }

  /** A definition node as a row: {"not": X} becomes a none-of group (of X's children when X is an any group). */
  function nodeRow(node, isRoot) {
    if (node && Array.isArray(node.all)) { return groupRow("all", node.all, isRoot); }
    if (node && Array.isArray(node.any)) { return groupRow("any", node.any, isRoot); }
    if (node && node.not) {
      var inner = node.not;
      return groupRow("none", inner && Array.isArray(inner.any) ? inner.any : [inner], isRoot);
    }
    if (isRoot) { return groupRow("all", [node], true); }
    if (node && node.type && !FIELDS[node.type]) { return fixedRow(node); }
    return conditionRow(node || { type: "orders" });
  }

  // ---- reading the builder back ---------------------------------------------------------------

  function field(row, name) {
    return row.querySelector(":scope > .sb-fields [data-field='" + name + "']");
  }

  function readWindow(row) {
    var kind = field(row, "window");
    if (!kind || kind.value === "all") { return undefined; }
    return { last: numberOrText(field(row, "window.last").value), unit: field(row, "window.unit").value };
  }

  function readCondition(row) {
    var type = row.querySelector(":scope > .sb-head [data-field=type]").value;
    var cond = { type: type };
    var op = field(row, "op");
    var value = field(row, "value");
    if (type === "attribute") {
      cond.field = field(row, "field").value;
      cond.op = op.value;
      if (cond.op === "within") { cond.window = readWindow(row) || { last: 30, unit: "days" }; }
      else if (cond.op === "between") {
        cond.value = [field(row, "value.0").value || null, field(row, "value.1").value || null];
      } else if (cond.op === "in") { cond.value = splitList(value.value); }
      else if (cond.op !== "is_set") {
        cond.value = value.tagName === "SELECT" ? value.value === "true" : value.value;
      }
      return cond;
    }
    if (type === "tag") {
      cond.tags = splitList(field(row, "tags").value);
      cond.match = field(row, "match").value;
      return cond;
    }
    if (type === "orders") { cond.measure = field(row, "measure").value; }
    if (type === "events") { cond.event = field(row, "event").value; }
    if (type === "score") { cond.field = field(row, "field").value; }
    cond.op = op.value;
    if (cond.op === "between" || cond.op === "in") {
      cond.value = splitList(value.value).map(function (v) {
        return type === "orders" && cond.measure === "amount" ? v : numberOrText(v);
      });
    } else if (type === "score" && TEXT_SCORES.indexOf(cond.field) >= 0) {
      cond.value = value.value.trim();
    } else if (type === "orders" && cond.measure === "amount") {
      cond.value = value.value.trim();  // money stays text: exact
    } else {
      cond.value = numberOrText(value.value);
    }
    if (type === "orders" || type === "events") {
      var w = readWindow(row);
      if (w) { cond.window = w; }
      var cat = splitList(field(row, "category").value);
      if (cat.length) { cond.category = cat; }
    }
    if (type === "orders") {
      var ch = splitList(field(row, "channel").value);
      if (ch.length) { cond.channel = ch; }
    }
    return cond;
  }

  function join(path, part) { return path ? path + "." + part : part; }

  /** The definition node of a row; marks every row with its place in the definition (data-path). */
  function read(row, path) {
    row.setAttribute("data-path", path);
    if (row.getAttribute("data-kind") === "condition") { return readCondition(row); }
    if (row.getAttribute("data-kind") === "fixed") { return row.fixedCondition; }
    var kind = row.querySelector(":scope > .sb-head [data-field=group]").value;
    var rows = Array.prototype.slice.call(row.querySelector(":scope > .sb-children").children);
    if (kind === "none") {
      if (rows.length === 1) { return { not: read(rows[0], join(path, "not")) }; }
      return { not: { any: rows.map(function (r, i) { return read(r, join(path, "not.any[" + i + "]")); }) } };
    }
    return (function () {
      var node = {};
      node[kind] = rows.map(function (r, i) { return read(r, join(path, kind + "[" + i + "]")); });
      return node;
    })();
  }

  // ---- errors -----------------------------------------------------------------------------------

  function clearErrors() {
    Array.prototype.forEach.call(document.querySelectorAll(".sb-error"), function (e) { e.remove(); });
  }

  function showErrors(errors) {
    clearErrors();
    var rows = Array.prototype.slice.call(root.querySelectorAll("[data-path]")).concat([root]);
    var shown = {};
    errors.forEach(function (error) {
      var best = root, bestPath = "";
      rows.forEach(function (r) {
        var p = r.getAttribute("data-path") || "";
        if (p && (error.path === p || error.path.indexOf(p + ".") === 0) && p.length > bestPath.length) {
          best = r;
          bestPath = p;
        }
      });
      var rest = bestPath ? error.path.slice(bestPath.length + 1) : error.path;
      var name = rest.split(".")[0].replace(/\[\d+\]$/, "");
      var key = bestPath + "|" + name;
      if (shown[key]) { return; }
      shown[key] = true;
      var note = el("p", { "class": "field-error sb-error", role: "alert", "data-error-for": name || "node",
                           text: error.message });
      var target = best.getAttribute("data-kind") === "condition" && name ? field(best, name) : null;
      if (target) { target.insertAdjacentElement("afterend", note); }
      else { best.querySelector(":scope > .sb-head").insertAdjacentElement("afterend", note); }
    });
  }

  // ---- preview ----------------------------------------------------------------------------------

  function token() {
    var t = document.querySelector("#segment-form input[name=csrf_token]");
    return t ? t.value : "";
  }

  function showSample(answer) {
    var box = document.querySelector(".sb-sample");
    box.textContent = "";
    document.querySelector(".sb-masked").hidden = !answer.masked;
    if (!answer.sample.length) { return; }
    box.appendChild(el("h3", { text: L.sample }));
    var cols = ["customer_id", "name", "email", "phone", "city", "channel"];
    var labels = [L.col_customer, L.col_name, L.col_email, L.col_phone, L.col_city, L.col_channel];
    var head = el("tr", {}, labels.map(function (l) { return el("th", { text: l }); }));
    var body = el("tbody", {}, answer.sample.map(function (c) {
      return el("tr", { "data-customer": c.customer_id }, cols.map(function (col) {
        if (col === "customer_id") { return el("td", {}, [el("a", { href: c.href, text: c.customer_id })]); }
        return el("td", { "data-col": col, text: c[col] });
      }));
    }));
    box.appendChild(el("table", { "class": "data", id: "preview-sample" }, [el("thead", {}, [head]), body]));
  }

  function preview(definition) {
    var count = document.querySelector(".sb-count");
    if (!count) { return; }
    var mine = ++sequence;
    count.setAttribute("data-state", "checking");
    count.textContent = L.checking;
    fetch(data.preview_url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token() },
      body: JSON.stringify({ definition: definition })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (mine !== sequence) { return; }
      if (answer.ok) {
        clearErrors();
        count.textContent = answer.text;
        count.setAttribute("data-count", String(answer.count));
        count.setAttribute("data-state", "ok");
        showSample(answer);
      } else {
        count.textContent = L.invalid;
        count.removeAttribute("data-count");
        count.setAttribute("data-state", "invalid");
        document.querySelector(".sb-sample").textContent = "";
        showErrors(answer.errors || []);
      }
    }).catch(function () {
      if (mine === sequence) { count.textContent = L.invalid; count.setAttribute("data-state", "invalid"); }
    });
  }

  function changed() {
    var definition = read(root, "");
    var hidden = document.getElementById("segment-definition");
    if (hidden) { hidden.value = JSON.stringify(definition); }
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(function () { pending = null; preview(definition); }, 350);
  }

  // ---- events -----------------------------------------------------------------------------------

  function onChange(event) {
    var target = event.target;
    var name = target.getAttribute("data-field");
    var row = target.closest(".sb-node");
    if (name === "type") {
      drawFields(row, { type: target.value });
    } else if (row && row.getAttribute("data-kind") === "condition" &&
               (name === "field" || name === "op" || name === "measure")) {
      var cond = readCondition(row);
      if (name === "field") { delete cond.op; delete cond.value; }
      if (name === "op") { delete cond.value; }
      drawFields(row, cond);
    } else if (name === "window") {
      var box = target.parentNode;
      box.querySelector("[data-field='window.last']").hidden = target.value === "all";
      box.querySelector("[data-field='window.unit']").hidden = target.value === "all";
      if (target.value === "last" && !box.querySelector("[data-field='window.last']").value) {
        box.querySelector("[data-field='window.last']").value = "30";
      }
    }
    changed();
  }

  function onClick(event) {
    var b = event.target.closest("button[data-action]");
    if (!b) { return; }
    var row = b.closest(".sb-node");
    var action = b.getAttribute("data-action");
    if (action === "remove") { row.remove(); }
    if (action === "add-condition") {
      row.querySelector(":scope > .sb-children").appendChild(
        conditionRow({ type: "orders", measure: "count", op: ">=", value: 1 }));
    }
    if (action === "add-group") {
      row.querySelector(":scope > .sb-children").appendChild(groupRow("any", [], false));
    }
    changed();
  }

  function start() {
    var holder = document.getElementById("segment-builder");
    var source = document.getElementById("segment-builder-data");
    if (!holder || !source) { return; }
    data = JSON.parse(source.textContent || "{}");
    L = data.labels;
    root = nodeRow(data.definition || { all: [] }, true);
    holder.appendChild(root);
    var definition = read(root, "");
    var hidden = document.getElementById("segment-definition");
    if (hidden) { hidden.value = JSON.stringify(definition); }
    if (data.errors && data.errors.length) { showErrors(data.errors); }
    if (data.readonly) { return; }
    holder.addEventListener("change", onChange);
    holder.addEventListener("input", function (e) {
      if (e.target.tagName === "INPUT") { changed(); }
    });
    holder.addEventListener("click", onClick);
    var form = document.getElementById("segment-form");
    if (form) {
      form.addEventListener("submit", function () {
        hidden.value = JSON.stringify(read(root, ""));
      });
    }
    preview(definition);
  }

  GW.onReady(start);
})();
