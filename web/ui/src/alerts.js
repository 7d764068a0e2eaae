// The alerts page: the target's alerts, firing first then newest, each
// with the sites' shares before and after and a link to the map at the
// moment it fired (or resolved).
import * as api from './api.js';
import { h, fmt, siteColors, chip, spinner, emptyState, errorState, sortableTable } from './util.js';

const KIND_LABELS = {
  site_lost: 'Site lost its probes',
  share_change: 'Share changed',
  unreachable_share: 'Unreachable share',
  unidentified_share: 'Unidentified share',
  burst: 'Burst of moves',
  flap: 'Flapping probes',
  region_flap: 'Flapping region',
  speed_of_light: 'Faster than light',
  inflation: 'Inflated RTTs',
};

// Kinds whose sample is a list of findings (worst first) worth showing
// under the summary; the others' samples are probe ids.
const FINDING_KINDS = new Set(['speed_of_light', 'inflation', 'region_flap']);

// The map at an earlier moment reads the result rollups, which the server
// rebuilds every 5 minutes: a moment more recent than that has no data yet,
// so a recent alert links to the live map, which is that moment near enough.
const ROLLUP_LAG_MS = 10 * 60e3;

function mapLink(target, at) {
  if (Date.now() - Date.parse(at) < ROLLUP_LAG_MS) return `#/map?${new URLSearchParams({ target })}`;
  return `#/map?${new URLSearchParams({ target, at })}`;
}

function sharesCell(a, colors) {
  return h('span.alert-shares', (a.sites || []).filter((s) => s.before_probes !== s.after_probes).slice(0, 4).map((s) =>
    h('span.alert-share', { title: `${s.before_probes} → ${s.after_probes} probes` }, chip(s.site, colors),
      ` ${s.before_share.toFixed(0)}% → ${s.after_share.toFixed(0)}%`)));
}

// findingsCell lists the first findings of a sample, one per line (table
// cells do not wrap), the whole sample in the tooltip.
function findingsCell(a) {
  const all = a.probes || [];
  return h('div.muted', { title: all.join('\n') }, all.slice(0, 3).map((p) => h('div', { style: { whiteSpace: 'normal', maxWidth: '60ch' } }, p)),
    all.length > 3 ? h('div', `… ${all.length - 3} more`) : null);
}

export function alertsPage(root, ctx) {
  const { target, params, setParams } = ctx;
  root.replaceChildren(spinner());
  const status = params.get('status') || '';
  return (async () => {
    let rep, rules, sites;
    try {
      [rep, rules, sites] = await Promise.all([
        api.get('/alerts', { target, status: status || null, limit: 500 }),
        api.get('/alerts/rules', { target }),
        api.get(`/targets/${api.enc(target)}/sites`),
      ]);
    } catch (e) {
      if (!ctx.stale()) root.replaceChildren(errorState(e, () => alertsPage(root, ctx)));
      return;
    }
    if (ctx.stale()) return;
    const colors = siteColors(sites.data.map((x) => x.code));
    const alerts = rep.data;
    const firing = alerts.filter((a) => a.status === 'firing').length;
    const head = h('div.page-head',
      h('div', h('h1', 'Alerts'), h('div.sub', `${target} · ${fmt.int(rules.data.length)} rule${rules.data.length === 1 ? '' : 's'}, ${firing} firing`)),
      h('div.toolbar', h('div.seg', [['', 'All'], ['firing', 'Firing'], ['resolved', 'Resolved']].map(([v, label]) =>
        h('button', { class: v === status ? 'on' : null, onclick: () => setParams({ status: v || null }) }, label)))));
    if (!alerts.length) {
      root.replaceChildren(head, h('div.card', emptyState(status ? `No ${status} alerts` : 'No alerts yet',
        rules.data.length
          ? h('p', 'The rules below have not fired. Alerts appear here when a site loses its probes, a share moves, and so on.')
          : h('p', 'Create an alert rule with an admin key (see docs/alerts.md), e.g. ',
            h('code', `anycatch-server alert rule-create ${target} --kind site_lost`), '.'))), rulesCard(rules.data));
      return;
    }
    const table = h('div.card',
      h('div.card-head', h('h2', 'Alerts'), h('span.hint', 'firing first, then newest; “map” opens the catchment at that moment')),
      h('div.table-wrap#alerts-list', sortableTable([
        { key: 'status', label: 'Status', value: (a) => (a.status === 'firing' ? 0 : 1),
          render: (a) => h(`span.badge.${a.status === 'firing' ? 'bad' : 'ok'}`, a.status) },
        { key: 'started_at', label: 'Started', render: (a) => fmt.time(a.started_at) },
        { key: 'resolved_at', label: 'Resolved', render: (a) => (a.resolved_at ? fmt.time(a.resolved_at) : '—') },
        { key: 'kind', label: 'Rule', render: (a) => h('span', { title: a.kind }, a.rule || KIND_LABELS[a.kind] || a.kind) },
        { key: 'subject', label: 'Subject', render: (a) => (!a.subject ? '—' : a.subject.includes(':') ? h('span', a.subject) : chip(a.subject, colors)) },
        { key: 'af', label: 'AF', render: (a) => `IPv${a.af}` },
        { key: 'summary', label: 'What happened', sortable: false, render: (a) => h('div', h('div', a.summary),
          FINDING_KINDS.has(a.kind) ? findingsCell(a) : sharesCell(a, colors)) },
        { key: 'map', label: '', sortable: false, render: (a) => h('span.alert-links',
          h('a.btn.small', { href: mapLink(target, a.started_at), title: 'the map when it fired (live while it is recent)' }, 'map'),
          a.resolved_at ? h('a.btn.small', { href: mapLink(target, a.resolved_at), title: 'the map when it resolved (live while it is recent)' }, 'after') : null) },
      ], alerts, { sort: 'status', dir: 1, rowClass: (a) => (a.status === 'firing' ? 'alert-firing' : null) })));
    root.replaceChildren(head, table, h('div', { style: { height: '16px' } }), rulesCard(rules.data));
  })();
}

function rulesCard(rules) {
  return h('div.card',
    h('div.card-head', h('h2', 'Rules'), h('span.hint', 'managed with an admin key: API /api/v1/alerts/rules or anycatch-server alert')),
    rules.length
      ? h('div.table-wrap#alert-rules', sortableTable([
        { key: 'name', label: 'Name' },
        { key: 'kind', label: 'Kind', render: (r) => (KIND_LABELS[r.kind] || r.kind) + (r.region ? ` (${r.region})` : '') },
        { key: 'af', label: 'AF', render: (r) => (r.af ? `IPv${r.af}` : 'both') },
        { key: 'threshold', label: 'Threshold', num: true },
        { key: 'window_sec', label: 'Window', num: true, render: (r) => `${r.window_sec} s` },
        { key: 'min_probes', label: 'Min probes', num: true },
        { key: 'enabled', label: 'Enabled', render: (r) => (r.enabled ? 'yes' : 'no') },
      ], rules, { sort: 'name' }))
      : h('div.card-body.muted', 'No rules for this target.'));
}
