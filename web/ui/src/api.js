// The API client: every request goes to the same origin under /api/v1 and
// carries the optional API key from localStorage as a Bearer token.

const KEY = 'anycatch.apiKey';

export function apiKey() {
  try { return localStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setApiKey(k) {
  try {
    if (k) localStorage.setItem(KEY, k);
    else localStorage.removeItem(KEY);
  } catch { /* storage disabled: key lasts for this page only */ }
}

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  const qs = q.toString();
  return `/api/v1${path}${qs ? `?${qs}` : ''}`;
}

export async function get(path, params) {
  const headers = { Accept: 'application/json' };
  const k = apiKey();
  if (k) headers.Authorization = `Bearer ${k}`;
  let res;
  try {
    res = await fetch(url(path, params), { headers });
  } catch (e) {
    throw new APIError(0, 'unavailable', `The API did not answer (${e.message}). Is anycatch-server running?`);
  }
  if (!res.ok) {
    let code = 'internal', msg = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && body.error) { code = body.error.code; msg = body.error.message + (body.error.param ? ` (${body.error.param})` : ''); }
    } catch { /* not JSON */ }
    throw new APIError(res.status, code, msg);
  }
  return res.json();
}

export const enc = encodeURIComponent;
