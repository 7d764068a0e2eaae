// The census layer of the map: where the service-side census (docs/census.md)
// found each site's catchment, as one diamond per (site, country) at the
// centroid of that site's geolocated networks there, sized by their count
// and coloured like the site's probes. It sits under the site markers, next
// to the probe dots, and a checkbox hides it. Targets without a census round
// (or servers without the census) show no layer and no checkbox.
import * as api from './api.js';
import { h, s, fmt, OTHER_COLOR } from './util.js';
import './census.css';

const TTL = 30e3; // the census changes per round (minutes to hours)
const cache = new Map(); // target -> { t, p }
let visible = true;

function load(target) {
  const c = cache.get(target);
  if (c && Date.now() - c.t < TTL) return c.p;
  const p = api.get(`/targets/${api.enc(target)}/census`, { format: 'geojson' })
    .catch((e) => { if (e.status === 404 || e.status === 503) return null; throw e; });
  cache.set(target, { t: Date.now(), p });
  return p;
}

// drawCensus adds the layer to the map's overlay once the census has
// loaded; a map redrawn meanwhile (the overlay is no longer in the page)
// is left alone.
export function drawCensus(wrap, overlay, projection, colors, target) {
  load(target).then((fc) => {
    if (!fc || !overlay.isConnected) return;
    const feats = fc.features || [];
    const max = Math.max(1, ...feats.map((f) => f.properties.prefixes));
    const g = s('g', { class: 'census-layer' });
    const points = [];
    for (const f of feats) {
      const xy = projection(f.geometry.coordinates);
      if (!xy) continue;
      const p = f.properties;
      const color = colors.get(p.site) || OTHER_COLOR;
      const r = 4 + 9 * Math.sqrt(p.prefixes / max);
      g.append(s('rect', { class: 'census-mark', x: -r / 1.4, y: -r / 1.4, width: 2 * r / 1.4, height: 2 * r / 1.4,
        transform: `translate(${xy[0].toFixed(1)},${xy[1].toFixed(1)}) rotate(45)`, fill: color, 'data-site': p.site },
      s('title', {}, `${p.site}: ${fmt.int(p.prefixes)} networks${p.country ? ` in ${p.country}` : ''} (census round ${p.round})`)));
      points.push({ site: p.site, country: p.country || '', prefixes: p.prefixes, color, x: xy[0], y: xy[1] });
    }
    g.style.display = visible ? '' : 'none';
    overlay.prepend(g);
    const round = feats.length ? feats[0].properties.round : null;
    const total = points.reduce((n, p) => n + p.prefixes, 0);
    const toggle = h('label.census-toggle',
      h('input#census-toggle', { type: 'checkbox', checked: visible || null,
        onchange: (e) => { visible = e.target.checked; g.style.display = visible ? '' : 'none'; wrap.dataset.censusVisible = visible ? '1' : '0'; } }),
      h('span.census-key'),
      round == null ? 'Census: no located networks' : `Census round ${round} · ${fmt.int(total)} located networks`);
    wrap.append(toggle);
    window.anycatch = window.anycatch || {};
    window.anycatch.census = { round, points };
    wrap.dataset.census = points.length;
    wrap.dataset.censusVisible = visible ? '1' : '0';
  }).catch((e) => {
    wrap.append(h('span.census-toggle.muted', `Census unavailable: ${e.message}`));
  });
}
