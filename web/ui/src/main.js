// anycatch web UI: a hash-routed single page over the public REST API.
// Routes: #/map, #/changes, #/latency, #/probes, #/sites, #/alerts; query parameters
// after the route (#/map?target=dns&at=...) keep each view linkable.
import './app.css';
import * as api from './api.js';
import { h, spinner, emptyState, errorState } from './util.js';
import { mapPage } from './map.js';
import { changesPage, latencyPage, probesPage, sitesPage } from './pages.js';
import { alertsPage } from './alerts.js';
import './alerts.css';

const ROUTES = {
  map: { label: 'Catchment map', page: mapPage, needsTarget: true },
  changes: { label: 'Changes', page: changesPage, needsTarget: true },
  latency: { label: 'Latency', page: latencyPage, needsTarget: true },
  probes: { label: 'Probes', page: probesPage, needsTarget: false },
  sites: { label: 'Sites & rules', page: sitesPage, needsTarget: true },
  alerts: { label: 'Alerts', page: alertsPage, needsTarget: true },
};
const TARGET_KEY = 'anycatch.target';

let targets = null; // cached /targets
let leaveHooks = [];
// generation counts renders: a page whose render is not the latest is
// stale and must not touch shared state (window.anycatch, #ids).
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { route: ROUTES[path] ? path : 'map', params: new URLSearchParams(query || '') };
}

function hashFor(route, params) {
  const q = params.toString();
  return `#/${route}${q ? `?${q}` : ''}`;
}

const logo = () => {
  const el = h('span');
  el.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9" fill="none" stroke="#2563eb" stroke-width="2.2"/><circle cx="12" cy="12" r="4.5" fill="none" stroke="#93b4f5" stroke-width="2"/><circle cx="12" cy="12" r="1.8" fill="#2563eb"/></svg>';
  return el.firstChild;
};

function keyDialog() {
  const input = h('input', { type: 'password', name: 'key', placeholder: 'ak_…', value: api.apiKey(), autocomplete: 'off' });
  const dlg = h('dialog',
    h('form', { method: 'dialog' },
      h('h2', 'API key'),
      h('p.muted', { style: { margin: 0 } }, 'Needed when the server does not allow anonymous reads. The key is kept in this browser only (localStorage) and sent as a Bearer token. Create one with ', h('code', 'anycatch-server key create --scope read'), '.'),
      input,
      h('div.row',
        h('button', { value: 'clear', type: 'submit' }, 'Forget key'),
        h('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
        h('button.primary', { value: 'save', type: 'submit' }, 'Save'))));
  dlg.addEventListener('close', () => {
    if (dlg.returnValue === 'save') api.setApiKey(input.value.trim());
    else if (dlg.returnValue === 'clear') api.setApiKey('');
    else return;
    dlg.remove();
    targets = null;
    render();
  });
  document.body.append(dlg);
  dlg.showModal();
}

async function render() {
  for (const f of leaveHooks) f();
  leaveHooks = [];
  const gen = ++generation;
  const { route, params } = parseHash();
  const app = document.getElementById('app');
  const main = h('main');
  const picker = h('select#target', { 'aria-label': 'target' });
  const nav = h('nav.nav', Object.entries(ROUTES).map(([k, r]) => {
    const p = new URLSearchParams();
    if (params.get('target')) p.set('target', params.get('target'));
    return h('a', { href: hashFor(k, p), class: k === route ? 'active' : null }, r.label);
  }));
  const keyBtn = h('button.ghost#api-key', { onclick: keyDialog, title: 'Set the API key' }, api.apiKey() ? 'API key ✓' : 'API key');
  app.replaceChildren(
    h('header.top', h('div.top-inner',
      h('a.brand', { href: '#/map' }, logo(), 'anycatch'),
      nav,
      h('div.top-right', h('label.small.muted', { for: 'target' }, 'Target'), picker, keyBtn))),
    main);

  if (!targets) {
    main.replaceChildren(spinner('Loading targets…'));
    try {
      targets = (await api.get('/targets')).data;
    } catch (e) {
      main.replaceChildren(errorState(e, render));
      picker.disabled = true;
      return;
    }
  }
  let target = params.get('target');
  if (!target || !targets.some((t) => t.name === target)) {
    let saved = '';
    try { saved = localStorage.getItem(TARGET_KEY) || ''; } catch { /* ignore */ }
    target = targets.some((t) => t.name === saved) ? saved : targets[0]?.name;
  }
  picker.replaceChildren(...targets.map((t) => h('option', { value: t.name, selected: t.name === target || null }, t.name)));
  picker.disabled = !targets.length;
  picker.addEventListener('change', () => {
    const p = new URLSearchParams(); p.set('target', picker.value);
    location.hash = hashFor(route, p);
  });
  if (target) { try { localStorage.setItem(TARGET_KEY, target); } catch { /* ignore */ } }

  if (ROUTES[route].needsTarget && !target) {
    main.replaceChildren(h('div.card', emptyState('No targets yet',
      h('p', 'A target is an anycast service to measure. Create one with an admin API key:'),
      h('pre', `curl -X POST -H "Authorization: Bearer $ADMIN_KEY" ${location.origin}/api/v1/targets \\\n  -d '{"name":"dns","addr4":"192.0.2.53","specs":[{"kind":"identity"},{"kind":"ping"}]}'`),
      h('p', 'then add its sites and identity rules, and enroll probes.'))));
    return;
  }
  const ctx = {
    target,
    params,
    setParams(upd) {
      const p = new URLSearchParams(params);
      if (target) p.set('target', target);
      for (const [k, v] of Object.entries(upd)) { if (v == null) p.delete(k); else p.set(k, v); }
      location.hash = hashFor(route, p);
    },
    onLeave: (f) => leaveHooks.push(f),
    // stale reports whether the user has navigated away since this render
    // (a page still awaiting data must then drop it).
    stale: () => gen !== generation,
  };
  document.title = `${ROUTES[route].label}${target ? ` · ${target}` : ''} · anycatch`;
  try {
    await ROUTES[route].page(main, ctx);
  } catch (e) {
    main.replaceChildren(errorState(e, render));
  }
}

window.addEventListener('hashchange', render);
render();
