// Small DOM and formatting helpers shared by the pages.

// h builds an element: h('div.card#id', {attrs, on*: handlers}, ...children).
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement(m[1] || 'div');
  for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'html') el.innerHTML = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const svgNS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  for (const c of children) if (c != null) el.append(c);
  return el;
}

// Site colours: a fixed palette of well separated hues. A site's colour is
// chosen by a hash of its code, so it stays the same across targets and
// reloads; codes that collide take the next free colour in code order.
export const PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#17becf',
  '#e377c2', '#8c564b', '#bcbd22', '#393b79', '#ad494a', '#637939',
];
export const OTHER_COLOR = '#9aa4b2';

function hash(str) {
  let x = 2166136261;
  for (let i = 0; i < str.length; i++) x = Math.imul(x ^ str.charCodeAt(i), 16777619);
  return x >>> 0;
}

export function siteColors(codes) {
  const sorted = [...new Set(codes)].sort();
  const used = new Set();
  const out = new Map();
  for (const c of sorted) {
    let i = hash(c) % PALETTE.length;
    if (used.size < PALETTE.length) while (used.has(i)) i = (i + 1) % PALETTE.length;
    used.add(i);
    out.set(c, PALETTE[i]);
  }
  return out;
}

export const fmt = {
  int: (n) => (n == null ? '—' : Number(n).toLocaleString('en-US')),
  ms: (n) => (n == null ? '—' : `${Number(n).toFixed(n < 10 ? 1 : 0)} ms`),
  ms1: (n) => (n == null ? '—' : `${Number(n).toFixed(1)}`),
  pct: (f) => (f == null ? '—' : `${(f * 100).toFixed(1)}%`),
  time(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  },
  ago(iso) {
    if (!iso) return 'never';
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 90) return 'just now';
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 129600) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  },
  asn: (n, name) => (n == null ? '—' : `AS${n}${name ? ` ${name}` : ''}`),
};

export function chip(site, colors) {
  if (!site) return h('span.chip.none', '—');
  return h('span.chip', h('i', { style: { background: colors.get(site) || OTHER_COLOR } }), site);
}

export function spinner(text = 'Loading…') {
  return h('div.state', h('div.spinner'), h('p', text));
}

export function emptyState(title, ...body) {
  return h('div.state', h('h2', title), ...body);
}

export function errorState(err, retry) {
  return h('div.state.error',
    h('h2', err.status === 401 || err.status === 403 ? 'Not authorised' : 'Could not load data'),
    h('p', err.message),
    err.status === 401 || err.status === 403
      ? h('p', 'This server needs an API key for reads. Set one with the ', h('b', 'API key'), ' button at the top right.')
      : null,
    retry ? h('p', h('button', { onclick: retry }, 'Try again')) : null);
}

// sortableTable renders rows with clickable headers. cols: {key, label,
// num, render(row), value(row)}. The table keeps its sort state.
export function sortableTable(cols, rows, { sort = null, dir = 1, rowClass } = {}) {
  const table = h('table');
  const thead = h('thead');
  const tbody = h('tbody');
  table.append(thead, tbody);
  let state = { sort, dir };
  const draw = () => {
    const col = cols.find((c) => c.key === state.sort);
    const sorted = [...rows];
    if (col) {
      const val = col.value || ((r) => r[col.key]);
      sorted.sort((a, b) => {
        const x = val(a), y = val(b);
        if (x == null && y == null) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * state.dir;
      });
    }
    thead.replaceChildren(h('tr', cols.map((c) => h('th', {
      class: [c.num ? 'num' : '', c.sortable === false ? '' : 'sortable',
        state.sort === c.key ? (state.dir > 0 ? 'sorted-asc' : 'sorted-desc') : ''].join(' ').trim(),
      'data-key': c.key,
      onclick: c.sortable === false ? null : () => {
        state = { sort: c.key, dir: state.sort === c.key ? -state.dir : (c.num ? -1 : 1) };
        draw();
      },
    }, c.label))));
    tbody.replaceChildren(...sorted.map((r) => h('tr', { class: rowClass ? rowClass(r) : null },
      cols.map((c) => h('td', { class: c.num ? 'num' : c.wrap ? 'wrap' : null }, c.render ? c.render(r) : (r[c.key] ?? '—'))))));
  };
  draw();
  return table;
}
