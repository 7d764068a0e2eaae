// When nothing is live (e.g. a target that holds only imported history),
// the map opens at the target's newest data instead of an empty "now",
// and says so.
import { h, fmt } from './util.js';

// The window of the fallback view: results of a day, so a measurement that
// ran for hours or days shows its probes rather than only the last minutes.
const FALLBACK_WINDOW = '24h';

// latestFallback returns cat unchanged when it has probes or the API knows
// no newer data; otherwise the catchment at cat.latest_data_at (fetched
// with get(query)) and the note to show above the map.
export async function latestFallback(cat, get) {
  if ((cat.probes && cat.probes.length) || !cat.latest_data_at) return { cat, note: null };
  const past = await get({ at: cat.latest_data_at, window: FALLBACK_WINDOW });
  const note = h('div.latest-note#latest-note', { role: 'status' },
    h('strong', 'Nothing live. '),
    `No probe has measured this target in the last ${Math.round(cat.window_sec / 60)} minutes; showing the newest data, the day up to ${fmt.time(cat.latest_data_at)}.`);
  return { cat: past, note };
}
