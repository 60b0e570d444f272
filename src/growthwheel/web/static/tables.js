/* Every data table of a console page exports to CSV and Excel: links above the table send it, as the
 * reader sees it, to POST /export/table (the server's one export writer escapes formula-like text)
 * and save the answer. Tables with their own export carry data-export="own". No inline script. */
(function () {
  "use strict";
  var zh = (document.documentElement.lang || "").indexOf("zh") === 0;
  var L = zh ? { csv: "导出 CSV", xlsx: "导出 Excel", failed: "导出失败，请刷新页面后重试。" }
             : { csv: "Export CSV", xlsx: "Export Excel", failed: "The export failed: reload the page and try again." };

  function token() {
    var el = document.querySelector("input[name=csrf_token]");
    return el ? el.value : "";
  }

  function cellsOf(row) {
    return Array.prototype.map.call(row.cells, function (c) {
      return (c.innerText || c.textContent || "").replace(/\s+/g, " ").trim();
    });
  }

  function tableData(table) {
    var head = table.tHead && table.tHead.rows.length ? cellsOf(table.tHead.rows[table.tHead.rows.length - 1]) : [];
    var rows = [];
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (r) { rows.push(cellsOf(r)); });
    });
    if (!head.length && rows.length) { head = rows.shift(); }
    return { header: head, rows: rows };
  }

  function fileName(table, index) {
    var base = (window.location.pathname.replace(/^\/+|\/+$/g, "") || "overview").replace(/[^A-Za-z0-9_-]+/g, "-");
    var id = (table.id || "").replace(/[^A-Za-z0-9_-]+/g, "-");
    return (base + "-" + (id || "table-" + (index + 1))).slice(0, 60);
  }

  function download(table, kind, name) {
    var d = tableData(table);
    window.fetch("/export/table", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token() },
      body: JSON.stringify({ name: name, format: kind, header: d.header, rows: d.rows })
    }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.blob();
    }).then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name + "." + kind;
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      window.setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }).catch(function () { window.alert(L.failed); });
  }

  function link(text, kind, table, name) {
    var a = document.createElement("a");
    a.href = "#";
    a.setAttribute("role", "button");
    a.setAttribute("data-export-format", kind);
    a.textContent = text;
    a.addEventListener("click", function (e) { e.preventDefault(); download(table, kind, name); });
    return a;
  }

  function decorate(root) {
    var tables = (root && root.querySelectorAll ? root : document).querySelectorAll("table.data");
    Array.prototype.forEach.call(tables, function (table, i) {
      if (table.closest("[data-export=own]") || table.getAttribute("data-export-ready")) { return; }
      if (!table.tBodies.length || !table.tBodies[0].rows.length) { return; }
      table.setAttribute("data-export-ready", "1");
      var name = fileName(table, i);
      var bar = document.createElement("p");
      bar.className = "table-export muted small";
      bar.appendChild(link(L.csv, "csv", table, name));
      bar.appendChild(document.createTextNode(" · "));
      bar.appendChild(link(L.xlsx, "xlsx", table, name));
      table.parentNode.insertBefore(bar, table);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { decorate(document); });
  } else {
    decorate(document);
  }
  document.addEventListener("htmx:afterSwap", function (e) { decorate(e.target); });
})();
