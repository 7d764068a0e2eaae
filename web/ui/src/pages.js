// The report pages: changes, latency, probes, sites & rules.
import * as api from './api.js';
import { h, s, fmt, siteColors, chip, spinner, emptyState, errorState, sortableTable } from './util.js';
import { speedOfLight, sourcesBySite, siteLines, solCard } from './identify.js';

const RANGES = { '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

function rangeSeg(params, setParams, def = '7d') {
  const cur = params.get('range') || def;
  return h('div.seg', Object.keys(RANGES).map((k) =>
    h('button', { class: k === cur ? 'on' : null, onclick: () => setParams({ range: k }) }, `Last ${k}`)));
}

function fromOf(params, def = '7d') {
  return new Date(Date.now() - RANGES[params.get('range') || def]).toISOString();
}

async function load(root, ctx, page, fn) {
  root.replaceChildren(spinner());
  try {
    await fn();
  } catch (e) {
    root.replaceChildren(errorState(e, () => page(root, ctx)));
  }
}

// ---- Changes ---------------------------------------------------------------

export function changesPage(root, ctx) {
  const { target, params, setParams } = ctx;
  return load(root, ctx, changesPage, async () => {
    const from = fromOf(params, '24h');
    const showNew = params.get('new') === '1';
    // Newest first; first observations left out by the API unless asked for.
    const q = { from, order: 'desc', moves_only: showNew ? null : 'true' };
    const path = `/targets/${api.enc(target)}/changes`;
    const [rep, sites, times] = await Promise.all([
      api.get(path, { ...q, limit: 1000 }),
      api.get(`/targets/${api.enc(target)}/sites`),
      // Hourly counts of all changes and of moves: the exact totals, and
      // how many first observations the checkbox would add.
      api.get(`${path}/times`, { from, bucket: '60m', limit: 24 * 31 }).catch(() => null),
    ]);
    // Page through up to 10,000 changes; the per-site counts and flapping
    // list in the first page already cover the whole range.
    for (let i = 0; rep.next_cursor && i < 9; i++) {
      const more = await api.get(path, { ...q, limit: 1000, cursor: rep.next_cursor });
      rep.changes = rep.changes.concat(more.changes);
      rep.next_cursor = more.next_cursor;
    }
    const sum = (k) => (times ? times.times.reduce((a, b) => a + b[k], 0) : null);
    const allChanges = sum('changes'), allMoves = sum('moves');
    const firstSeen = times ? allChanges - allMoves : showNew ? rep.changes.filter((c) => !c.from_state).length : null;
    const totalListed = times ? (showNew ? allChanges : allMoves) : null;
    const colors = siteColors(sites.data.map((x) => x.code));
    const head = h('div.page-head',
      h('div', h('h1', 'Catchment changes'), h('div.sub', `${target} · probes moving between sites, ${fmt.time(rep.from)} – ${fmt.time(rep.to)}`)),
      h('div.toolbar',
        h('label.small.muted', { style: { display: 'flex', gap: '6px', alignItems: 'center' } },
          h('input', { type: 'checkbox', checked: showNew || null, onchange: (e) => setParams({ new: e.target.checked ? '1' : null }) }),
          `include first observations${firstSeen != null ? ` (${fmt.int(firstSeen)})` : ''}`),
        rangeSeg(params, setParams, '24h'),
        h('a.btn#changes-csv', { href: api.url(path, { ...q, format: 'csv' }), download: `${target}-changes.csv` }, 'Download CSV')));
    const moves = rep.changes.length;
    const stats = h('div.stats',
      stat(showNew ? 'Changes' : 'Moves', totalListed != null ? fmt.int(totalListed) : fmt.int(moves) + (rep.next_cursor ? '+' : '')),
      stat('Probes affected', fmt.int(new Set(rep.changes.map((c) => c.probe)).size)),
      stat('Flapping probes', fmt.int(rep.flapping.length)),
      stat('Sites involved', fmt.int(rep.sites.length)));
    if (!moves && !rep.sites.length) {
      root.replaceChildren(head, stats, h('div.card', emptyState('No catchment changes in this period',
        h('p', 'Every probe stayed with the same site. Pick a longer range above, or look at the map for the current catchment.'))));
      return;
    }
    const max = Math.max(1, ...rep.sites.map((x) => Math.max(x.gained, x.lost)));
    const siteCard = h('div.card',
      h('div.card-head', h('h2', 'Gained and lost per site'), h('span.hint', 'lost ◀ │ ▶ gained')),
      h('ul.site-bars#site-changes', [...rep.sites].sort((a, b) => b.net - a.net).map((x) =>
        h('li', { 'data-site': x.site, 'data-gained': x.gained, 'data-lost': x.lost },
          chip(x.site, colors),
          h('span.neg', { title: `lost ${x.lost}` }, h('i', { style: { width: `${(x.lost / max) * 100}%` } })),
          h('span.pos', { title: `gained ${x.gained}` }, h('i', { style: { width: `${(x.gained / max) * 100}%` } })),
          h('span.net', { style: { color: x.net > 0 ? 'var(--ok)' : x.net < 0 ? 'var(--bad)' : 'inherit' } }, x.net > 0 ? `+${x.net}` : x.net)))));
    const flapCard = h('div.card',
      h('div.card-head', h('h2', 'Flapping probes'), h('span.hint', 'probes with repeated changes')),
      rep.flapping.length
        ? h('div.table-wrap', sortableTable([
          { key: 'probe', label: 'Probe', render: (r) => h('span.mono', r.probe) },
          { key: 'af', label: 'AF', render: (r) => `IPv${r.af}` },
          { key: 'changes', label: 'Changes', num: true },
        ], rep.flapping, { sort: 'changes', dir: -1 }))
        : h('div.card-body.muted', 'No probe flapped in this period.'));
    const timeline = h('div.card.timeline',
      h('div.card-head', h('h2', 'Timeline'), h('span.hint', 'changes per bucket, coloured by the site probes moved to')),
      h('div.card-body', histogram(rep.changes, Date.parse(rep.from), Date.parse(rep.to), colors)));
    const list = h('div.card',
      h('div.card-head', h('h2', showNew ? 'Changes' : 'Moves'), h('span.hint', rep.next_cursor ? 'newest 10,000 loaded — download the CSV for all' : `${fmt.int(moves)} ${showNew ? 'changes' : 'moves'}, newest first`)),
      h('div.table-wrap#changes-list', { style: { maxHeight: '520px', overflowY: 'auto' } }, sortableTable([
        { key: 'ts', label: 'Time', render: (r) => fmt.time(r.ts) },
        { key: 'probe', label: 'Probe', render: (r) => h('span.mono', r.probe) },
        { key: 'af', label: 'AF', render: (r) => `IPv${r.af}` },
        { key: 'move', label: 'Move', value: (r) => `${r.from_site || r.from_state || ''}>${r.to_site || r.to_state}`,
          render: (r) => h('span', r.from_site ? chip(r.from_site, colors) : stateChip(r.from_state || 'new', r.from_identity), h('span.arrow', '→'),
            r.to_site ? chip(r.to_site, colors) : stateChip(r.to_state, r.to_identity)) },
        { key: 'rtt_ms', label: 'RTT', num: true, render: (r) => fmt.ms(r.rtt_ms) },
      ], rep.changes, { sort: 'ts', dir: -1 })));
    root.replaceChildren(head, stats, h('div.grid-2', siteCard, flapCard), h('div', { style: { height: '16px' } }), timeline,
      h('div', { style: { height: '16px' } }), list);
  });
}

// stateChip shows a change end that is not a site: new, unreachable, or
// unidentified with the identity the probe saw.
function stateChip(state, identity) {
  return h('span.chip.none', { title: identity || null }, state, state === 'unidentified' && identity ? h('span.mono.ident', identity) : null);
}

function stat(label, value, sub) {
  return h('div.card.stat', h('div.label', label), h('div.value', value, sub ? h('small', sub) : null));
}

function histogram(changes, from, to, colors) {
  const W = 1000, H = 120, n = 48;
  const step = (to - from) / n;
  const buckets = Array.from({ length: n }, () => new Map());
  for (const c of changes) {
    const i = Math.floor((Date.parse(c.ts) - from) / step);
    if (i < 0 || i >= n) continue;
    const k = c.to_site || '';
    buckets[i].set(k, (buckets[i].get(k) || 0) + 1);
  }
  const totals = buckets.map((b) => [...b.values()].reduce((a, x) => a + x, 0));
  const max = Math.max(1, ...totals);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H + 2}`, preserveAspectRatio: 'none', height: H + 2 });
  buckets.forEach((b, i) => {
    let y = H;
    for (const [site, c] of [...b.entries()].sort()) {
      const bh = Math.max((c / max) * H, 2);
      y -= bh;
      const r = s('rect', { x: (i * W) / n + 1, y, width: W / n - 2, height: bh, fill: colors.get(site) || '#9aa4b2' });
      r.append(s('title', {}, `${fmt.time(new Date(from + i * step).toISOString())}: ${c} to ${site || 'no site'}`));
      svg.append(r);
    }
  });
  svg.append(s('line', { x1: 0, x2: W, y1: H, y2: H, stroke: '#e4e8ee' }));
  return h('div', svg, h('div.axis', h('span', fmt.time(new Date(from).toISOString())), h('span', fmt.time(new Date(to).toISOString()))));
}

// ---- Latency ---------------------------------------------------------------

export function latencyPage(root, ctx) {
  const { target, params, setParams } = ctx;
  return load(root, ctx, latencyPage, async () => {
    const group = params.get('group') || 'country';
    const kind = params.get('kind') || 'ping';
    const q = { from: fromOf(params, '24h'), group, kind };
    const [rep, sites] = await Promise.all([
      api.get(`/targets/${api.enc(target)}/latency`, q),
      api.get(`/targets/${api.enc(target)}/sites`),
    ]);
    const colors = siteColors(sites.data.map((x) => x.code));
    const csvHref = api.url(`/targets/${api.enc(target)}/latency`, { ...q, format: 'csv' });
    const inflatedBy = new Map();
    for (const p of rep.inflated) inflatedBy.set(p.group, (inflatedBy.get(p.group) || 0) + 1);
    const head = h('div.page-head',
      h('div', h('h1', 'Latency'), h('div.sub', `${target} · ${kind} RTT per probe, ${fmt.time(rep.from)} – ${fmt.time(rep.to)}`)),
      h('div.toolbar',
        h('label.field', 'Group by', h('select#group', { onchange: (e) => setParams({ group: e.target.value }) },
          ['country', 'continent', 'asn', 'region'].map((g) => h('option', { value: g, selected: g === group || null }, g)))),
        h('label.field', 'Measurement', h('select', { onchange: (e) => setParams({ kind: e.target.value }) },
          ['ping', 'identity', 'dns', 'trace'].map((g) => h('option', { value: g, selected: g === kind || null }, g)))),
        rangeSeg(params, setParams, '24h'),
        h('a.btn.primary#csv', { href: csvHref, download: `${target}-latency.csv` }, 'Download CSV')));
    const t = rep.total;
    const stats = h('div.stats',
      stat('Probes', fmt.int(t.probes)),
      stat('Median RTT', t.p50 != null ? fmt.ms1(t.p50) : '—', 'ms'),
      stat('p90 RTT', t.p90 != null ? fmt.ms1(t.p90) : '—', 'ms'),
      stat('Loss', fmt.pct(t.loss)),
      stat('Inflated probes', fmt.int(rep.inflated.length)));
    if (!t.count && !rep.groups.length) {
      root.replaceChildren(head, stats, h('div.card', emptyState('No latency data in this period',
        h('p', `No ${kind} results from any probe between ${fmt.time(rep.from)} and ${fmt.time(rep.to)}. Pick a longer range, another measurement kind, or check that the target's schedule includes ${kind}.`))));
      return;
    }
    const statCols = (label, keyRender) => [
      { key: 'key', label, render: keyRender },
      { key: 'probes', label: 'Probes', num: true, render: (r) => fmt.int(r.probes) },
      { key: 'p50', label: 'p50 ms', num: true, render: (r) => fmt.ms1(r.p50) },
      { key: 'p90', label: 'p90 ms', num: true, render: (r) => fmt.ms1(r.p90) },
      { key: 'p99', label: 'p99 ms', num: true, render: (r) => fmt.ms1(r.p99) },
      { key: 'loss', label: 'Loss', num: true, render: (r) => fmt.pct(r.loss) },
    ];
    const siteCard = h('div.card', h('div.card-head', h('h2', 'By site'), h('span.hint', 'click a header to sort')),
      h('div.table-wrap', sortableTable(statCols('Site', (r) => (colors.has(r.key) ? chip(r.key, colors) : h('span.chip.none', r.key === '?' || !r.key ? 'no site' : r.key))), rep.sites, { sort: 'probes', dir: -1 })));
    const groupCard = matrixCard(rep, group, colors, inflatedBy);
    const inflCard = h('div.card', h('div.card-head', h('h2', 'Inflated probes'),
      h('span.hint', 'RTT well above the best seen from the same group or unicast')),
    rep.inflated.length ? h('div.table-wrap', { style: { maxHeight: '420px', overflowY: 'auto' } }, sortableTable([
      { key: 'probe', label: 'Probe', render: (r) => h('span.mono', r.probe) },
      { key: 'group', label: 'Group' },
      { key: 'site', label: 'Site', render: (r) => chip(r.site, colors) },
      { key: 'rtt', label: 'RTT ms', num: true, render: (r) => fmt.ms1(r.rtt) },
      { key: 'baseline', label: 'Baseline ms', num: true, render: (r) => [fmt.ms1(r.baseline), r.baseline_site ? h('span.muted', ` via ${r.baseline_site}`) : null] },
      { key: 'extra_ms', label: 'Extra', num: true, render: (r) => h('span.flag', `+${fmt.ms1(r.extra_ms)} ms`) },
      { key: 'ratio', label: 'Ratio', num: true, render: (r) => `×${Number(r.ratio).toFixed(1)}` },
    ], rep.inflated, { sort: 'extra_ms', dir: -1 })) : h('div.card-body.muted', 'No probe is inflated: every probe reaches a site close to the best one seen from its group.'));
    root.replaceChildren(head, stats, h('div.stack', groupCard, h('div.grid-2', siteCard, inflCard)));
  });
}

// matrixCard is the latency report's main table: one row per group (region,
// ASN, … as chosen), one column per site, each cell the p50 / p90 of the
// group's probes reaching that site. A cell is flagged when the API marks it
// inflated (the group would be better served by another site); the group's
// best site is tinted green. Site headers sort rows by that site's p50.
function matrixCard(rep, group, colors, inflatedBy) {
  const label = group === 'asn' ? 'ASN' : group[0].toUpperCase() + group.slice(1);
  const keyText = (k) => (!k ? 'unknown' : group === 'asn' && /^\d+$/.test(k) ? `AS${k}` : k);
  const cells = rep.by_group_site || [];
  const rows = new Map(rep.groups.map((g) => [g.key, { ...g, cells: new Map(), flagged: 0, best: null }]));
  const siteProbes = new Map();
  let hidden = 0;
  for (const c of cells) {
    // Columns are the known sites: unmapped identities and unreachable
    // probes have their own pages and count in the group's loss.
    if (!colors.has(c.site) || c.p50 == null) { hidden += c.probes; continue; }
    let r = rows.get(c.group);
    if (!r) { r = { key: c.group, probes: 0, cells: new Map(), flagged: 0, best: null }; rows.set(c.group, r); }
    r.cells.set(c.site, c);
    if (c.inflated) r.flagged++;
    if (!r.best || c.p50 < r.best.p50) r.best = c;
    siteProbes.set(c.site, (siteProbes.get(c.site) || 0) + c.probes);
  }
  const sites = [...siteProbes.keys()].sort((a, b) => siteProbes.get(b) - siteProbes.get(a) || a.localeCompare(b));
  const cols = [
    { key: 'key', label, render: (r) => h('span.gkey', { 'data-group': r.key }, keyText(r.key)) },
    { key: 'probes', label: 'Probes', num: true, render: (r) => fmt.int(r.probes) },
    { key: 'p50', label: 'p50 ms', num: true, render: (r) => fmt.ms1(r.p50) },
    { key: 'p90', label: 'p90 ms', num: true, render: (r) => fmt.ms1(r.p90) },
    ...sites.map((site) => ({
      key: `site:${site}`, label: chip(site, colors), num: true, site,
      value: (r) => r.cells.get(site)?.p50 ?? null,
      render: (r) => {
        const c = r.cells.get(site);
        if (!c) return h('span.lcell.empty', '·');
        const cls = c.inflated ? 'lcell infl' : r.best === c && r.cells.size > 1 ? 'lcell best' : 'lcell';
        const title = `${keyText(r.key)} → ${site}: ${fmt.int(c.probes)} probe${c.probes === 1 ? '' : 's'}, p50 ${fmt.ms1(c.p50)} ms, p90 ${fmt.ms1(c.p90)} ms, loss ${fmt.pct(c.loss)}`
          + (c.inflated ? ` — inflated: p50 well above the group's best site (${r.best.site}, ${fmt.ms1(r.best.p50)} ms)` : '')
          + (c.inflated_probes ? `; ${c.inflated_probes} inflated probe${c.inflated_probes === 1 ? '' : 's'}` : '');
        return h('span', { class: cls, title, 'data-p50': c.p50, 'data-p90': c.p90 ?? '', 'data-inflated': c.inflated ? '1' : null },
          h('b', c.inflated ? h('span.up', '▲') : null, fmt.ms1(c.p50)), h('span.p90', fmt.ms1(c.p90)),
          h('small', `${fmt.int(c.probes)} probe${c.probes === 1 ? '' : 's'}`));
      },
    })),
    { key: 'inflated', label: 'Inflation', num: true, value: (r) => r.flagged * 1e6 + (inflatedBy.get(r.key) || 0),
      render: (r) => {
        const n = inflatedBy.get(r.key) || 0;
        const title = `${r.flagged} inflated site${r.flagged === 1 ? '' : 's'}, ${fmt.int(n)} inflated probe${n === 1 ? '' : 's'}`;
        return r.flagged ? h('span.pill.bad', { title }, `${r.flagged} site${r.flagged === 1 ? '' : 's'}`)
          : n ? h('span.pill.warn', { title }, `${fmt.int(n)} probe${n === 1 ? '' : 's'}`) : h('span.pill.ok', 'ok');
      } },
  ];
  const table = sortableTable(cols, [...rows.values()], { sort: 'probes', dir: -1, rowClass: (r) => (r.flagged ? 'flagged' : null) });
  table.id = 'latency-table';
  table.classList.add('matrix');
  return h('div.card', h('div.card-head', h('h2', `By ${group} × site`),
    h('span.hint', h('span.legend-cell', h('b', 'p50'), h('span.p90', 'p90'), h('small', 'probes')), ' ms · ',
      h('span.flag', '▲ inflated'), ' · ', h('span.best-key', 'best site'), ' · click a header to sort',
      hidden ? ` · ${fmt.int(hidden)} probes without a site not shown` : '')),
  rows.size ? h('div.table-wrap', { style: { maxHeight: '560px', overflowY: 'auto' } }, table)
    : h('div.card-body.muted', 'No group has probes reaching a site in this period.'));
}

// ---- Probes ----------------------------------------------------------------

export function probesPage(root, ctx) {
  const { params, setParams } = ctx;
  return load(root, ctx, probesPage, async () => {
    const f = { country: (params.get('country') || '').toUpperCase(), asn: params.get('asn') || '', status: params.get('status') || '' };
    const first = await api.get('/probes', { ...f, limit: 100 });
    let rows = first.data, cursor = first.next_cursor;
    const only = params.get('probe');
    if (only) rows = rows.filter((p) => p.id === only);
    const apply = (e) => {
      e.preventDefault();
      const fd = new FormData(e.target);
      setParams({ country: fd.get('country') || null, asn: fd.get('asn') || null, status: fd.get('status') || null, probe: null });
    };
    const head = h('div.page-head',
      h('div', h('h1', 'Probes'), h('div.sub', 'Vantage points, their location and network (positions are blurred)')),
      h('form.toolbar#probe-filters', { onsubmit: apply },
        h('label.field', 'Country', h('input', { type: 'text', name: 'country', placeholder: 'e.g. DE', value: f.country, size: 6, maxlength: 2 })),
        h('label.field', 'ASN', h('input', { type: 'number', name: 'asn', placeholder: 'e.g. 3320', value: f.asn, style: { width: '120px' } })),
        h('label.field', 'Status', h('select', { name: 'status' },
          ['', 'connected', 'disconnected', 'abandoned'].map((x) => h('option', { value: x, selected: x === f.status || null }, x || 'any')))),
        h('button.primary', { type: 'submit' }, 'Filter'),
        f.country || f.asn || f.status || only ? h('button', { type: 'button', onclick: () => setParams({ country: null, asn: null, status: null, probe: null }) }, 'Clear') : null));
    if (!rows.length) {
      const filtered = f.country || f.asn || f.status || only;
      root.replaceChildren(head, h('div.card', filtered
        ? emptyState('No probe matches these filters', h('p', 'Clear the filters to see every probe.'))
        : emptyState('No probes yet', h('p', 'Enroll one: create an enrollment token on the server, then start a probe with it.'),
          h('pre', 'anycatch-server token create --name my-probes\nanycatch-probe run --collector https://COLLECTOR --enroll-token TOKEN'))));
      return;
    }
    const counts = { connected: 0, disconnected: 0, abandoned: 0 };
    const tableSlot = h('div.table-wrap', { style: { maxHeight: '640px', overflowY: 'auto' } });
    const moreSlot = h('div');
    const cols = [
      { key: 'id', label: 'Probe', render: (p) => h('span.mono', p.id) },
      { key: 'status', label: 'Status', render: (p) => h('span.pill', { class: `pill ${p.status === 'connected' ? 'ok' : p.status === 'disconnected' ? 'warn' : 'bad'}` }, p.status) },
      { key: 'country', label: 'Location', value: (p) => `${p.country || ''} ${p.city || ''}`, render: (p) => [p.city, p.country].filter(Boolean).join(', ') || '—' },
      { key: 'asn', label: 'Network', value: (p) => p.asn, render: (p) => fmt.asn(p.asn, p.as_name) },
      { key: 'version', label: 'Version', render: (p) => (p.version ? h('span.mono', p.version) : '—') },
      { key: 'last_seen', label: 'Last seen', value: (p) => p.last_seen || '', render: (p) => h('span', { title: p.last_seen || '' }, fmt.ago(p.last_seen)) },
    ];
    const statsEl = h('div.stats');
    const draw = () => {
      for (const k of Object.keys(counts)) counts[k] = 0;
      for (const p of rows) counts[p.status] = (counts[p.status] || 0) + 1;
      statsEl.replaceChildren(stat('Listed', fmt.int(rows.length) + (cursor ? '+' : '')), stat('Connected', fmt.int(counts.connected)),
        stat('Disconnected', fmt.int(counts.disconnected)), stat('Abandoned', fmt.int(counts.abandoned)));
      tableSlot.replaceChildren(sortableTable(cols, rows, { sort: 'status', dir: 1 }));
      moreSlot.replaceChildren(cursor ? h('div.more', h('button', { onclick: more }, 'Load more')) : '');
    };
    const more = async (e) => {
      e.target.disabled = true;
      try {
        const r = await api.get('/probes', { ...f, limit: 100, cursor });
        rows = rows.concat(r.data); cursor = r.next_cursor;
        draw();
      } catch (err) { moreSlot.replaceChildren(errorState(err)); }
    };
    draw();
    root.replaceChildren(head, statsEl, h('div.card', tableSlot, moreSlot));
  });
}

// ---- Sites & rules ---------------------------------------------------------

export function sitesPage(root, ctx) {
  const { target } = ctx;
  return load(root, ctx, sitesPage, async () => {
    const t = api.enc(target);
    const [sites, rules, unmapped, cat, sol] = await Promise.all([
      api.get(`/targets/${t}/sites`), api.get(`/targets/${t}/rules`), api.get(`/targets/${t}/unmapped`),
      api.get(`/targets/${t}/catchment`), speedOfLight(target),
    ]);
    const sources = sourcesBySite(cat);
    const colors = siteColors(sites.data.map((x) => x.code));
    const seen = new Map(); // site -> identity -> probes
    for (const p of cat.probes) {
      if (p.state !== 'site' || !p.identity) continue;
      if (!seen.has(p.site)) seen.set(p.site, new Map());
      const m = seen.get(p.site);
      m.set(p.identity, (m.get(p.identity) || 0) + 1);
    }
    const share = new Map((cat.total?.sites || []).map((x) => [x.site, x]));
    const head = h('div.page-head',
      h('div', h('h1', 'Sites & rules'), h('div.sub', `${target} · where the anycast address is announced, and how identities map to sites`)));
    const parts = [head];
    if (unmapped.data.length) {
      parts.push(h('div.banner', h('b', `${unmapped.data.length} identit${unmapped.data.length === 1 ? 'y' : 'ies'} match no rule.`),
        ' Probes reaching them count as unidentified. Add a rule for each (see below).'));
    }
    if (!sites.data.length) {
      parts.push(h('div.card', emptyState('No sites yet',
        h('p', 'Add the locations that announce this target, for example:'),
        h('pre', `curl -X PUT -H "Authorization: Bearer $ADMIN_KEY" \\\n  ${location.origin}/api/v1/targets/${target}/sites/ams \\\n  -d '{"name":"Amsterdam","lat":52.37,"lon":4.9}'`))));
    } else {
      parts.push(h('div.sites-grid#sites', sites.data.map((x) => {
        const ids = [...(seen.get(x.code) || new Map()).entries()].sort((a, b) => b[1] - a[1]);
        const sr = share.get(x.code);
        const myRules = rules.data.filter((r) => r.site === x.code);
        return h('div.card.site-card', { 'data-site': x.code },
          h('div.card-head', h('h2', chip(x.code, colors), x.name ? h('span.muted', { style: { fontWeight: 400 } }, x.name) : null),
            h('span.hint', sr ? `${fmt.int(sr.probes)} probes · ${fmt.pct(sr.share)}` : 'no probes')),
          h('div.card-body',
            h('dl.kv',
              h('dt', 'Location'), h('dd', x.lat != null ? `${x.lat.toFixed(2)}, ${x.lon.toFixed(2)}` : '—'),
              h('dt', 'Unicast'), h('dd.mono', [x.unicast4, x.unicast6].filter(Boolean).join('  ') || '—'),
              h('dt', 'Rules'), h('dd', myRules.length ? myRules.map((r) => h('div.mono', `${r.source} ${r.match} ${r.pattern}`)) : h('span.muted', 'none')),
              ...siteLines(x.code, sources, sol)),
            h('div.small.muted', { style: { marginTop: '10px' } }, 'Identities seen now'),
            h('div.ids', ids.length ? ids.slice(0, 12).map(([id, n]) => h('code', { title: `${n} probes` }, id)) : h('span.muted.small', 'none'))));
      })));
    }
    parts.push(h('div', { style: { height: '16px' } }));
    if (sol) parts.push(solCard(sol, colors), h('div', { style: { height: '16px' } }));
    const ruleCard = h('div.card', h('div.card-head', h('h2', 'Identity rules'), h('span.hint', 'first match wins')),
      rules.data.length ? h('div.table-wrap', sortableTable([
        { key: 'i', label: '#', num: true, sortable: false, render: (r) => rules.data.indexOf(r) + 1 },
        { key: 'source', label: 'Source', sortable: false },
        { key: 'match', label: 'Match', sortable: false },
        { key: 'pattern', label: 'Pattern', sortable: false, render: (r) => h('span.mono', r.pattern) },
        { key: 'site', label: 'Site', sortable: false, render: (r) => chip(r.site, colors) },
        { key: 'note', label: 'Note', sortable: false, render: (r) => r.note || '' },
      ], rules.data)) : h('div.card-body.muted', 'No rules: every identity is unmapped. Add rules with PUT /api/v1/targets/{target}/rules.'));
    const guess = (id) => {
      const lower = id.toLowerCase();
      return sites.data.find((x) => lower.includes(x.code.toLowerCase()))?.code || 'SITE';
    };
    const unCard = h('div.card', h('div.card-head', h('h2', 'Unmapped identities'), h('span.hint', 'answers that no rule maps to a site')),
      unmapped.data.length ? [h('div.table-wrap#unmapped', sortableTable([
        { key: 'identity', label: 'Identity', render: (r) => h('span.mono', r.identity) },
        { key: 'probes', label: 'Probes', num: true },
        { key: 'last_seen', label: 'Last seen', render: (r) => fmt.ago(r.last_seen) },
        { key: 'hint', label: 'Rule to add', sortable: false, wrap: true,
          render: (r) => h('code', JSON.stringify({ source: r.source || 'any', match: 'exact', pattern: r.identity, site: guess(r.identity) })) },
      ], unmapped.data, { sort: 'probes', dir: -1, rowClass: () => 'unmapped' })),
      h('div.card-body.small.muted', 'Append the rule to the list and PUT it back (rules replace the whole list):',
        h('pre', `curl -H "Authorization: Bearer $KEY" ${location.origin}/api/v1/targets/${target}/rules > rules.json\n# add the rule to .data, then\ncurl -X PUT -H "Authorization: Bearer $ADMIN_KEY" --data @rules.json \\\n  ${location.origin}/api/v1/targets/${target}/rules`))]
        : h('div.card-body.muted', 'Every identity seen maps to a site.'));
    parts.push(h('div.grid-2', ruleCard, unCard));
    root.replaceChildren(...parts);
  });
}
