// Identification beyond CHAOS on the Sites page: which evidence named each
// site's probes, and the speed-of-light check (a reply cannot beat light in
// fibre, ~100 km per ms of RTT). Inferred sites for unidentified probes are
// shown apart and marked "inferred": they are guesses, never identities.
import * as api from './api.js';
import { h, fmt, chip, sortableTable } from './util.js';

// speedOfLight fetches the report for the last hour; null when the server
// cannot give one (older server, store without support).
export async function speedOfLight(target) {
  try {
    return await api.get(`/targets/${api.enc(target)}/speed-of-light`);
  } catch (e) {
    return null;
  }
}

// sourcesBySite counts, per site, the sources that named its probes now.
export function sourcesBySite(cat) {
  const out = new Map();
  for (const p of cat.probes || []) {
    if (p.state !== 'site' || !p.source) continue;
    if (!out.has(p.site)) out.set(p.site, new Map());
    const m = out.get(p.site);
    m.set(p.source, (m.get(p.source) || 0) + 1);
  }
  return out;
}

// siteLines are the rows a site card adds: what named the site, and its
// speed-of-light count.
export function siteLines(code, sources, sol) {
  const named = [...(sources.get(code) || new Map()).entries()].sort((a, b) => b[1] - a[1]);
  const c = sol?.sites?.find((x) => x.site === code);
  return [
    h('dt', 'Named by'), h('dd', named.length ? named.map(([s, n]) => h('span.mono', { title: `${n} probes` }, `${s} ×${n} `)) : h('span.muted', '—')),
    h('dt', 'Speed of light'), h('dd', { class: c?.impossible ? 'sol-bad' : null, 'data-sol-site': code },
      c ? `${fmt.int(c.impossible)} of ${fmt.int(c.checked)} results impossible` : h('span.muted', 'not checked')),
  ];
}

// solCard is the speed-of-light card: flagged pairs and inferred sites.
export function solCard(sol, colors) {
  if (!sol) return null;
  const head = h('div.card-head', h('h2', 'Speed-of-light check'),
    h('span.hint', `last hour · ${fmt.int(sol.checked)} results checked · ${sol.km_per_ms} km per ms of RTT`));
  const body = [];
  if (sol.flags.length) {
    body.push(h('div.banner', h('b', `${fmt.int(sol.impossible)} result${sol.impossible === 1 ? '' : 's'} faster than light allows.`),
      ' A wrong rule, wrong site coordinates or a wrong probe location.'));
    body.push(h('div.table-wrap#sol-flags', sortableTable([
      { key: 'site', label: 'Site', render: (r) => chip(r.site, colors) },
      { key: 'probe', label: 'Probe', render: (r) => h('span.mono', r.probe) },
      { key: 'af', label: 'AF', num: true },
      { key: 'distance_km', label: 'Distance', num: true, render: (r) => `${fmt.int(r.distance_km)} km` },
      { key: 'min_rtt_ms', label: 'Fastest RTT', num: true, render: (r) => fmt.ms(r.min_rtt_ms) },
      { key: 'needed_rtt_ms', label: 'Light needs', num: true, render: (r) => fmt.ms(r.needed_rtt_ms) },
      { key: 'impossible', label: 'Impossible', num: true, render: (r) => `${r.impossible} of ${r.results}` },
    ], sol.flags, { sort: 'impossible', dir: -1 })));
  } else {
    body.push(h('div.card-body.muted', sol.checked ? 'No result is faster than light allows.' : 'Nothing to check yet: sites and probes need coordinates.'));
  }
  if (sol.inferred.length) {
    body.push(h('div.card-body.small.muted', 'Unidentified probes: sites their RTT still allows. ',
      h('b', 'Inferred'), ', not identified: never counted in the catchment.'));
    body.push(h('div.table-wrap#sol-inferred', sortableTable([
      { key: 'probe', label: 'Probe', render: (r) => h('span.mono', r.probe) },
      { key: 'af', label: 'AF', num: true },
      { key: 'rtt_ms', label: 'RTT', num: true, render: (r) => fmt.ms(r.rtt_ms) },
      { key: 'guess', label: 'Best guess', render: (r) => (r.guess ? h('span', chip(r.guess, colors), h('span.tag-inferred', 'inferred')) : h('span.muted', 'none possible')) },
      { key: 'candidates', label: 'Possible', sortable: false, wrap: true, render: (r) => r.candidates.map((c) => `${c.site} (${fmt.int(c.km)} km)`).join(', ') },
    ], sol.inferred, { sort: 'rtt_ms', dir: 1 })));
  }
  return h('div.card#sol', head, ...body);
}
