// The catchment map: countries shaded by their dominant site, one dot per
// probe coloured by the site it reaches (drawn on a canvas, one path per
// site, so 10,000 probes stay smooth), site locations, a legend with the
// API's shares and a time control that steps through catchment changes.
import { geoNaturalEarth1, geoPath, geoGraticule10 } from 'd3-geo';
import { quadtree } from 'd3-quadtree';
import { feature } from 'topojson-client';
import world from 'world-atlas/countries-110m.json';
import { ISO_NUMERIC } from './iso.js';
import { latestFallback } from './latest.js';
import * as api from './api.js';
import { drawCensus } from './census.js';
import { measureNowCard } from './measure-now.js';
import { h, s, fmt, siteColors, OTHER_COLOR, chip, spinner, emptyState, errorState } from './util.js';

let countries; // GeoJSON features with .cc (alpha-2), built once
function countryFeatures() {
  if (!countries) {
    countries = feature(world, world.objects.countries).features;
    for (const f of countries) f.cc = ISO_NUMERIC[f.id] || (f.properties.name === 'Kosovo' ? 'XK' : '');
  }
  return countries;
}

function mix(hex, t) { // hex blended toward white by 1-t
  const n = parseInt(hex.slice(1), 16);
  const c = [n >> 16, (n >> 8) & 255, n & 255].map((v) => Math.round(255 - (255 - v) * t));
  return `rgb(${c.join(',')})`;
}

const WEEK = 7 * 86400e3;
let firstDraw = true;

export async function mapPage(root, ctx) {
  const { target, params, setParams } = ctx;
  const at = params.get('at') || '';
  root.replaceChildren(spinner('Loading catchment…'));
  // The change list only feeds the time control: fetch it alongside the
  // catchment but draw the map without waiting for it.
  const changesP = loadChangeTimes(target).catch(() => null);
  let cat, note = null;
  try {
    cat = await api.get(`/targets/${api.enc(target)}/catchment`, { at });
    if (!at) ({ cat, note } = await latestFallback(cat, (q) => api.get(`/targets/${api.enc(target)}/catchment`, q)));
  } catch (e) {
    if (!ctx.stale()) root.replaceChildren(errorState(e, () => mapPage(root, ctx)));
    return;
  }
  if (ctx.stale()) return; // navigated away meanwhile
  const colors = siteColors((cat.sites || []).map((x) => x.code));

  // Time control. Each step is a catchment "epoch": the moment just before
  // a burst of moves (see loadChangeTimes), so stepping back from now shows
  // each earlier catchment in turn; the last position is now.
  const atMs = at ? Date.parse(at) : note ? Date.parse(cat.at) : null;
  const timebarFor = (epochs) => {
    const idx = atMs == null ? -1 : epochs.findIndex((e) => e.at >= atMs);
    const cur = idx < 0 ? epochs.length : idx;
    const go = (ms) => setParams({ at: ms == null ? null : new Date(ms).toISOString() });
    const prev = cur > 0 ? epochs[cur - 1] : null;
    const next = atMs == null ? undefined : epochs.find((e) => e.at > atMs);
    const here = atMs == null ? null : epochs.find((e) => e.at === atMs);
    const slider = h('input#time-slider', { type: 'range', min: 0, max: epochs.length, step: 1, value: cur, 'aria-label': 'catchment time',
      disabled: epochs.length === 0 || null,
      onchange: (e) => { const i = +e.target.value; go(i >= epochs.length ? null : epochs[i].at); } });
    const dateInput = h('input', { type: 'datetime-local', step: 60, 'aria-label': 'catchment at',
      value: atMs == null ? '' : toLocalInput(atMs),
      onchange: (e) => { if (e.target.value) go(new Date(e.target.value).getTime()); } });
    return h('div.timebar',
      h('span.when', { 'data-at': cat.at }, atMs == null
        ? [h('span.live-dot'), 'Live · ', fmt.time(cat.at)]
        : [h('span.past-dot'), 'As of ', fmt.time(cat.at)]),
      h('button#prev-change', { title: prev ? `Catchment before the ${moves(prev.n)} from ${fmt.time(new Date(prev.change).toISOString())}` : 'No earlier move in 7 days',
        disabled: !prev || null, onclick: () => go(prev.at) }, '◀ Earlier'),
      slider,
      h('button#next-change', { title: 'Later catchment', disabled: atMs == null || null, onclick: () => go(next ? next.at : null) }, 'Later ▶'),
      dateInput,
      h('button#now', { disabled: atMs == null || null, onclick: () => go(null) }, 'Now'),
      h('span.muted.small#time-note', epochs.loading ? 'loading changes…' : here ? `step ${cur + 1} of ${epochs.length} · before ${moves(here.n)} from ${fmt.time(new Date(here.change).toISOString()).slice(11)}`
        : epochs.length ? `${epochs.length} burst${epochs.length === 1 ? '' : 's'} of moves in ${epochs.truncated ? 'the first part of ' : ''}7 days` : 'no moves in 7 days'));
  };
  let timebar = timebarFor(Object.assign([], { loading: true }));
  changesP.then((epochs) => { const nb = timebarFor(epochs || []); timebar.replaceWith(nb); timebar = nb; });

  const total = cat.total || { probes: 0, sites: [], unidentified: 0, unreachable: 0 };
  const mapWrap = h('div.map-wrap#map');
  const tooltip = h('div.tooltip', { hidden: true });
  const detail = h('div.card', h('div.card-head', h('h2', 'Probe')), h('div.card-body.muted', 'Hover over a dot to see the probe; click to pin it here with its last traceroute.'));
  const located = cat.probes.filter((p) => p.lat != null && p.lon != null);
  const foot = h('div.map-foot',
    h('span', `${fmt.int(total.probes)} probes`),
    h('span', `${fmt.int(total.unidentified)} unidentified`),
    h('span', `${fmt.int(total.unreachable)} unreachable`),
    cat.probes.length !== located.length ? h('span', `${fmt.int(cat.probes.length - located.length)} without location`) : null,
    h('span', { style: { marginLeft: 'auto' } }, `window ${Math.round(cat.window_sec / 60)} min`));

  const legend = legendCard(cat, total, colors);
  const layout = h('div.map-layout',
    h('div.card.map-card', note, timebar, mapWrap, tooltip, foot),
    h('div.stack', legend, atMs == null ? measureNowCard(target, () => { if (!ctx.stale()) mapPage(root, ctx); }) : null, detail));
  root.replaceChildren(layout);

  if (!cat.probes.length) {
    mapWrap.replaceWith(h('div', emptyState(atMs == null ? 'No probe has measured this target recently' : 'No probe had measured this target at that time',
      h('p', 'Probes show up here once they report identity results. Enroll one:'),
      h('pre', 'anycatch-server token create --name my-probes\nanycatch-probe run --collector https://COLLECTOR --enroll-token TOKEN'))));
    publish(cat, [], colors);
    return;
  }

  // A redraw after the user left would publish this (older) catchment
  // over the current page's.
  const draw = () => { if (!ctx.stale()) drawMap(mapWrap, tooltip, detail, cat, located, colors, target); };
  draw();
  let t;
  const onResize = () => { clearTimeout(t); t = setTimeout(draw, 150); };
  window.addEventListener('resize', onResize);
  ctx.onLeave(() => { clearTimeout(t); window.removeEventListener('resize', onResize); });
}

function moves(n) { return `${fmt.int(n)} move${n === 1 ? '' : 's'}`; }

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

// loadChangeTimes asks the API when probes moved in the last 7 days
// (changes/times, moves only: a probe's first observation is not a catchment
// change) in 1-minute buckets. Each step is the moment just before a burst:
// consecutive busy minutes form one burst.
async function loadChangeTimes(target) {
  const r = await api.get(`/targets/${api.enc(target)}/changes/times`, {
    from: new Date(Date.now() - WEEK).toISOString(), moves_only: 'true', bucket: '1m', limit: 10080,
  });
  const epochs = [];
  for (const b of r.times) {
    const t = Date.parse(b.ts), n = b.moves;
    if (!n) continue;
    const last = epochs[epochs.length - 1];
    if (last && t - last.last <= 60e3) { last.n += n; last.last = t; continue; }
    epochs.push({ at: t - 1, change: t, last: t, n });
  }
  epochs.truncated = r.truncated;
  return epochs;
}

function legendCard(cat, total, colors) {
  const siteInfo = new Map((cat.sites || []).map((x) => [x.code, x]));
  const rows = [...total.sites].sort((a, b) => b.probes - a.probes || a.site.localeCompare(b.site));
  const other = total.unidentified + total.unreachable;
  return h('div.card',
    h('div.card-head', h('h2', 'Catchment share'), h('span.hint', `${fmt.int(total.probes)} probes`)),
    rows.length || other ? h('ul.legend#legend',
      rows.map((r) => h('li', { 'data-site': r.site, 'data-probes': r.probes, 'data-share': r.share },
        h('span.sw', { style: { background: colors.get(r.site) } }),
        h('span.name', r.site, siteInfo.get(r.site)?.name ? h('small', siteInfo.get(r.site).name) : null),
        h('span.pct', fmt.pct(r.share)),
        h('span.bar', h('i', { style: { width: `${(r.share * 100).toFixed(2)}%`, background: colors.get(r.site) } })),
        h('span.meta', `${fmt.int(r.probes)} probes${r.median_rtt != null ? ` · median ${fmt.ms(r.median_rtt)}` : ''}`))),
      other ? h('li.other', { 'data-site': '', 'data-probes': other },
        h('span.sw'), h('span.name', 'Other'), h('span.pct', fmt.pct(total.probes ? other / total.probes : 0)),
        h('span.meta', `${fmt.int(total.unidentified)} unidentified · ${fmt.int(total.unreachable)} unreachable`)) : null)
      : h('div.card-body.muted', 'No site has probes yet.'));
}

// publish exposes what the map drew for tests and scripts.
function publish(cat, dots, colors) {
  window.anycatch = window.anycatch || {};
  window.anycatch.map = {
    at: cat.at,
    total: cat.total,
    colors: Object.fromEntries(colors),
    dots: dots.map((d) => ({ probe: d.p.probe, site: d.p.site || '', state: d.p.state, color: d.color, x: d.x, y: d.y })),
  };
  const el = document.getElementById('map');
  if (el) { el.dataset.dots = dots.length; el.dataset.at = cat.at; el.dataset.ready = '1'; }
  document.dispatchEvent(new CustomEvent('anycatch:map-drawn')); // overlays (measure-now.js) redraw their marks
  if (firstDraw) {
    firstDraw = false;
    performance.mark('map-drawn');
    try { performance.measure('time-to-map', { start: 0, end: 'map-drawn' }); } catch { /* old browser */ }
  }
}

function drawMap(wrap, tooltip, detail, cat, probes, colors, target) {
  const width = Math.max(320, wrap.clientWidth || 900);
  const height = Math.round(width * 0.5);
  const projection = geoNaturalEarth1().fitExtent([[8, 8], [width - 8, height - 8]], { type: 'Sphere' });
  const path = geoPath(projection);

  // Dominant site per country, from the API's per-country aggregate.
  const dominant = new Map();
  for (const g of cat.groups || []) {
    const best = [...(g.sites || [])].sort((a, b) => b.probes - a.probes)[0];
    if (best && best.probes > 0) dominant.set(g.key, { site: best.site, share: best.share });
  }

  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'catchment map' });
  svg.append(s('path', { class: 'sphere', d: path({ type: 'Sphere' }) }));
  svg.append(s('path', { class: 'graticule', d: path(geoGraticule10()) }));
  const g = s('g');
  for (const f of countryFeatures()) {
    const d = dominant.get(f.cc);
    const el = s('path', { class: 'country', d: path(f), 'data-cc': f.cc || null });
    if (d) { el.style.fill = mix(colors.get(d.site) || OTHER_COLOR, 0.22 + 0.2 * d.share); el.dataset.site = d.site; }
    el.append(s('title', {}, `${f.properties.name}${d ? ` — ${d.site} (${fmt.pct(d.share)})` : ''}`));
    g.append(el);
  }
  svg.append(g);

  // Dots, grouped by colour so each site is one canvas path.
  const dots = [];
  for (const p of probes) {
    const xy = projection([p.lon, p.lat]);
    if (!xy) continue;
    const color = p.state === 'site' ? colors.get(p.site) || OTHER_COLOR : OTHER_COLOR;
    dots.push({ p, x: xy[0], y: xy[1], color });
  }
  const dpr = window.devicePixelRatio || 1;
  const canvas = h('canvas', { width: Math.round(width * dpr), height: Math.round(height * dpr) });
  canvas.style.height = `${height}px`;
  const c = canvas.getContext('2d');
  c.scale(dpr, dpr);
  const r = dots.length > 3000 ? 2.2 : 3.2;
  const bycolor = new Map();
  for (const d of dots) {
    if (!bycolor.has(d.color)) bycolor.set(d.color, []);
    bycolor.get(d.color).push(d);
  }
  // Grey (unidentified/unreachable) first so coloured dots sit on top.
  const order = [...bycolor.keys()].sort((a, b) => (a === OTHER_COLOR ? -1 : b === OTHER_COLOR ? 1 : 0));
  c.lineWidth = 0.6;
  c.strokeStyle = 'rgba(255,255,255,.9)';
  for (const color of order) {
    c.beginPath();
    for (const d of bycolor.get(color)) { c.moveTo(d.x + r, d.y); c.arc(d.x, d.y, r, 0, 2 * Math.PI); }
    c.fillStyle = color;
    c.globalAlpha = color === OTHER_COLOR ? 0.7 : 0.9;
    c.fill();
    c.globalAlpha = 1;
    if (dots.length <= 3000) c.stroke();
  }

  // Site markers on top.
  for (const site of cat.sites || []) {
    if (site.lat == null || site.lon == null) continue;
    const xy = projection([site.lon, site.lat]);
    if (!xy) continue;
    const col = colors.get(site.code) || OTHER_COLOR;
    svg.append(s('g', { class: 'site-mark', transform: `translate(${xy[0].toFixed(1)},${xy[1].toFixed(1)})`, 'data-site': site.code },
      s('circle', { class: 'ring', r: 7, stroke: col }),
      s('circle', { class: 'core', r: 3, fill: col }),
      s('text', { x: 10, y: 4 }, site.code),
      s('title', {}, `${site.code}${site.name ? ` — ${site.name}` : ''}`)));
  }
  const overlay = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'overlay' });
  overlay.append(...[...svg.querySelectorAll('.site-mark')]);

  wrap.replaceChildren(svg, canvas, overlay);
  drawCensus(wrap, overlay, projection, colors, target);
  const tree = quadtree().x((d) => d.x).y((d) => d.y).addAll(dots);
  const pick = (ev) => {
    const b = svg.getBoundingClientRect();
    const x = (ev.clientX - b.left) * (width / b.width), y = (ev.clientY - b.top) * (height / b.height);
    return tree.find(x, y, 8);
  };
  svg.addEventListener('mousemove', (ev) => {
    const d = pick(ev);
    if (!d) { tooltip.hidden = true; svg.style.cursor = ''; return; }
    svg.style.cursor = 'pointer';
    tooltip.replaceChildren(...probeSummary(d.p, colors));
    tooltip.hidden = false;
    const box = wrap.parentElement.getBoundingClientRect();
    const tx = ev.clientX - box.left + 14, ty = ev.clientY - box.top + 14;
    tooltip.style.left = `${Math.min(tx, box.width - 290)}px`;
    tooltip.style.top = `${ty}px`;
  });
  svg.addEventListener('mouseleave', () => { tooltip.hidden = true; });
  svg.addEventListener('click', (ev) => { const d = pick(ev); if (d) showDetail(detail, d.p, colors, target); });

  publish(cat, dots, colors);
}

function stateText(p) {
  return p.state === 'site' ? p.site : p.state === 'unidentified' ? `unidentified${p.identity ? ` (${p.identity})` : ''}` : 'unreachable';
}

function probeSummary(p, colors) {
  return [
    h('div', p.state === 'site' ? chip(p.site, colors) : h('b', stateText(p))),
    h('div.mono', p.probe),
    p.identity ? h('div', 'identity ', h('span.mono', p.identity)) : null,
    p.source ? h('div', 'named by ', h('span.mono', p.source)) : null,
    h('div', `RTT ${fmt.ms(p.rtt_ms)} · ${fmt.asn(p.asn)} · ${p.country || '??'} · IPv${p.af}`),
  ];
}

async function showDetail(card, p, colors, target) {
  const body = h('div.card-body',
    h('dl.kv',
      h('dt', 'Site'), h('dd', p.state === 'site' ? chip(p.site, colors) : stateText(p)),
      h('dt', 'Probe'), h('dd.mono', p.probe),
      h('dt', 'Identity'), h('dd.mono', p.identity || '—'),
      h('dt', 'Named by'), h('dd.mono', p.source || '—'),
      h('dt', 'RTT'), h('dd', fmt.ms(p.rtt_ms)),
      h('dt', 'ASN'), h('dd', fmt.asn(p.asn)),
      h('dt', 'Location'), h('dd', [p.country, p.continent].filter(Boolean).join(', ') || '—'),
      h('dt', 'Family'), h('dd', `IPv${p.af}`),
      h('dt', 'Since'), h('dd', fmt.time(p.since)),
      h('dt', 'Observed'), h('dd', fmt.time(p.observed_at))),
    h('div.small.muted#trace', { style: { marginTop: '10px' } }, 'Loading last traceroute…'));
  card.replaceChildren(h('div.card-head', h('h2', 'Probe'), h('a.small', { href: `#/probes?probe=${api.enc(p.probe)}` }, 'all probes')), body);
  const slot = body.querySelector('#trace');
  try {
    const r = await api.get('/results', { target, probe: p.probe, kind: 'trace', limit: 1 });
    const t = r.data && r.data[0];
    if (!t || !t.trace) { slot.textContent = 'No traceroute from this probe yet.'; return; }
    slot.replaceChildren(
      h('div', h('b', 'Last traceroute'), ` · ${fmt.time(t.ts)} · ${t.trace.reached ? 'reached' : 'not reached'}`),
      h('ol.hops', t.trace.hops.map((hop) => {
        const a = hop.probes.find((x) => x.from) || {};
        return h('li', h('span', hop.ttl), h('span', a.from || '*'), h('span', a.rtt ? fmt.ms1(a.rtt) : ''));
      })));
  } catch (e) {
    slot.textContent = `Traceroute unavailable: ${e.message}`;
  }
}
