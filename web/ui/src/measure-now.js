// "Measure now": starts an on-demand identity measurement of the target on
// connected probes (POST /api/v1/measurements) and shows each probe's
// answer landing on the map as it streams in (GET …/measurements/{id} as
// NDJSON). Needs an API key (the header's key button); results are stored
// like scheduled ones, so the map is redrawn with them when all answered.
import { apiKey, url, APIError } from './api.js';
import { h } from './util.js';

const SVGNS = 'http://www.w3.org/2000/svg';

async function post(path, body) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const k = apiKey();
  if (k) headers.Authorization = `Bearer ${k}`;
  const res = await fetch(url(path), { method: 'POST', headers, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || {};
    throw new APIError(res.status, e.code || 'internal', (e.message || `${res.status} ${res.statusText}`) + (e.param ? ` (${e.param})` : ''));
  }
  return data;
}

// stream calls onEvent for each NDJSON line of the measurement until the
// server ends the stream.
async function stream(id, onEvent) {
  const headers = { Accept: 'application/x-ndjson' };
  const k = apiKey();
  if (k) headers.Authorization = `Bearer ${k}`;
  const res = await fetch(url(`/measurements/${encodeURIComponent(id)}`), { headers });
  if (!res.ok) throw new APIError(res.status, 'internal', `${res.status} ${res.statusText}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
}

function identityOf(r) {
  const id = r && r.dns && r.dns.identity;
  if (!id) return '';
  return id.hostname_bind || id.id_server || id.nsid || '';
}

// land marks a probe's answer on the map: a ring at its dot in the map's
// overlay (the dots' positions are published in window.anycatch.map).
function land(probe, ok) {
  const m = window.anycatch && window.anycatch.map;
  const overlay = document.querySelector('#map svg.overlay');
  const d = m && m.dots.find((x) => x.probe === probe);
  if (!overlay || !d) return false;
  const ring = document.createElementNS(SVGNS, 'circle');
  ring.setAttribute('class', `landed ${ok ? 'ok' : 'bad'}`);
  ring.setAttribute('cx', d.x.toFixed(1));
  ring.setAttribute('cy', d.y.toFixed(1));
  ring.setAttribute('r', '7');
  ring.dataset.probe = probe;
  overlay.append(ring);
  return true;
}

// measureNowCard returns the card; redraw is called once every probe has
// answered (the stored results are then part of the catchment).
export function measureNowCard(target, redraw) {
  const limit = h('select#measure-limit', { 'aria-label': 'probes' },
    [5, 10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === 25 || null }, `${n} probes`)));
  const status = h('div.small.muted#measure-status', 'Run this target\'s identity measurement now on connected probes and watch the answers land.');
  const list = h('ol.measure-events#measure-events');
  const button = h('button#measure-now', { type: 'button' }, 'Measure now');
  // Marks so far: a redraw of the map (resize) replaces its overlay, so
  // they are put back after every draw while this card is shown.
  let marks = [];
  const remark = () => {
    if (!card.isConnected) { document.removeEventListener('anycatch:map-drawn', remark); return; }
    for (const [p, ok] of marks) land(p, ok);
  };
  document.addEventListener('anycatch:map-drawn', remark);
  button.onclick = async () => {
    button.disabled = true;
    list.replaceChildren();
    marks = [];
    document.querySelectorAll('#map svg.overlay .landed').forEach((e) => e.remove());
    const t0 = performance.now();
    const counts = { result: 0, refused: 0, offline: 0, timeout: 0 };
    try {
      status.textContent = 'Starting…';
      const st = await post('/measurements', { target, kinds: ['identity'], from: { any: true }, limit: +limit.value, timeout_sec: 20 });
      status.textContent = `${st.id}: asked ${st.probes.length} probes…`;
      status.dataset.id = st.id;
      await stream(st.id, (ev) => {
        counts[ev.outcome] = (counts[ev.outcome] || 0) + 1;
        const ok = ev.outcome === 'result' && ev.result && !ev.result.error;
        marks.push([ev.probe, ok]);
        land(ev.probe, ok);
        const what = ev.outcome === 'result' ? (identityOf(ev.result) || ev.result.error || 'answered') : `${ev.outcome}${ev.reason ? `: ${ev.reason}` : ''}`;
        list.append(h('li', { 'data-probe': ev.probe, 'data-outcome': ev.outcome },
          h('span.t', `+${((performance.now() - t0) / 1000).toFixed(2)}s`), h('span.p', ev.probe), h('span', what)));
        status.textContent = `${st.id}: ${counts.result} of ${st.probes.length} answered…`;
      });
      status.textContent = `Done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${counts.result} results, ${counts.refused} refused, ${counts.offline} offline, ${counts.timeout} timed out.`;
      status.dataset.done = '1';
      if (redraw) setTimeout(redraw, 3000); // let the map show the landings first
    } catch (e) {
      status.textContent = e.status === 401 ? 'Measuring needs an API key: set one with the key button in the header.' : `Could not measure: ${e.message}`;
      status.dataset.error = '1';
    } finally {
      button.disabled = false;
    }
  };
  const card = h('div.card#measure-card',
    h('div.card-head', h('h2', 'Measure now')),
    h('div.card-body', h('div.measure-row', limit, button), status, list));
  return card;
}
