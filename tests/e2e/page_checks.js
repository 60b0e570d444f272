/* Checks the zh console test (test_zh_console.py) runs in each page. */
({
  /* What a reader sees: visible text outside lang="en" subtrees, placeholders, chosen options,
     and the texts ECharts draws on canvas. */
  visibleText: () => {
  const out = [];
  const visible = (el) => {
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden') return false;
      if (e.tagName === 'DETAILS' && !e.open && el !== e && !e.querySelector('summary')?.contains(el)) return false;
    }
    return el.getClientRects().length > 0 || el.tagName === 'OPTION';
  };
  const english = (el) => { const l = el.closest('[lang]'); return l && /^en/i.test(l.getAttribute('lang')); };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA'].includes(el.tagName)) continue;
    if (el.closest('code, kbd, samp')) continue;
    if (el.tagName === 'OPTION' && !el.selected) continue;
    if (!n.textContent.trim() || english(el) || !visible(el)) continue;
    out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (!english(el) && visible(el)) out.push(el.getAttribute('placeholder'));
  }
  for (const el of document.querySelectorAll('input[type=submit], input[type=button]')) {
    if (!english(el) && visible(el)) out.push(el.value);
  }
  if (window.echarts) {
    for (const el of document.querySelectorAll('[_echarts_instance_]')) {
      const chart = window.echarts.getInstanceByDom(el);
      if (!chart || english(el)) continue;
      const o = chart.getOption();
      /* A canvas cannot mark an identifier as <code>: a chart names those it draws in data-code. */
      const code = (el.dataset.code || '').split(' ').filter((w) => w);
      const plain = (text) => code.reduce((t, w) => t.split(w).join(' '), text);
      const names = (list) => (list || []).forEach((x) => { if (typeof x === 'string') out.push(plain(x));
        else if (x && typeof x.name === 'string') out.push(plain(x.name)); });
      (o.series || []).forEach((s) => names(s.data));  /* series names show through the legend */
      (o.legend || []).forEach((l) => names(l.data));
      [...(o.xAxis || []), ...(o.yAxis || [])].forEach((a) => { if (a.name) out.push(String(a.name)); names(a.data); });
      (o.title || []).forEach((t) => { if (t.text) out.push(String(t.text)); });
    }
  }
  return out;
},

  /* Empty tables, charts and empty-state panels that are visible. */
  empties: () => {
  const out = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const label = (el) => (el.id ? '#' + el.id : '') + (el.className ? '.' + String(el.className).split(' ')[0] : '');
  for (const table of document.querySelectorAll('table')) {
    if (!shown(table)) continue;
    const rows = table.tBodies.length ? [...table.tBodies].flatMap((b) => [...b.rows]) : [...table.rows].slice(1);
    if (rows.length === 0) out.push('empty table ' + label(table) + ' under "' + (table.closest('section, .panel, main')?.querySelector('h1, h2, h3')?.textContent || '').trim() + '"');
  }
  for (const el of document.querySelectorAll('.empty, .empty-state')) {
    if (shown(el)) out.push('empty state: ' + el.textContent.trim().slice(0, 80));
  }
  if (window.echarts) {
    for (const el of document.querySelectorAll('[_echarts_instance_]')) {
      const chart = window.echarts.getInstanceByDom(el);
      if (!chart || !shown(el)) continue;
      const o = chart.getOption();
      const points = (o.series || []).reduce((n, s) => n + ((s.data || []).filter((v) => v !== null && v !== undefined && v !== '-').length), 0);
      const graphic = JSON.stringify(o.graphic || []);
      if (points === 0 || /"text":"[^"]+"/.test(graphic)) out.push('empty chart ' + label(el));
    }
  }
  for (const el of document.querySelectorAll('canvas')) {
    if (shown(el) && (el.width === 0 || el.height === 0)) out.push('chart drawn at zero size');
  }
  return out;
},

  /* The document wider than the window, with the elements that stick out. */
  overflow: () => {
  const d = document.documentElement;
  if (d.scrollWidth <= d.clientWidth) return null;
  const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > d.clientWidth + 1)
    .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : '')).slice(0, 5);
  return 'page scrolls sideways: ' + d.scrollWidth + ' > ' + d.clientWidth + ' px (' + wide.join(', ') + ')';
}
})
