// The node's JSON endpoints, called on this page's own origin with the
// token from the token box.

const KEY = 'quorumq.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
}

// ApiError carries the node's one-line answer and its status.
export class ApiError extends Error {
  constructor(status, line) {
    super(status ? status + ': ' + line : line);
    this.status = status;
    this.line = line;
  }
}

const TIMEOUT_MS = 10000;

// call sends method path?params (undefined and null values are left out;
// an empty string is sent empty) and returns the answer: parsed JSON when
// the node answers JSON, else the text. A non-2xx answer throws an
// ApiError with the node's error line.
export async function call(method, path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) q.set(k, v);
  }
  const qs = q.toString();
  const headers = {};
  const t = token();
  if (t) headers['Authorization'] = 'Bearer ' + t;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let resp;
  try {
    resp = await fetch(path + (qs ? '?' + qs : ''), { method, headers, signal: ctl.signal, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : 'the node did not answer: ' + e.message);
  } finally {
    clearTimeout(timer);
  }
  const text = await resp.text();
  if (!resp.ok) {
    const line = text.split('\n')[0] || resp.statusText;
    throw new ApiError(resp.status, line);
  }
  if ((resp.headers.get('Content-Type') || '').startsWith('application/json')) return JSON.parse(text);
  return text;
}

export const get = (path, params) => call('GET', path, params);
export const post = (path, params) => call('POST', path, params);
