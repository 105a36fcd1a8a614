// Every request to the queen goes through apiFetch: it adds the API key, ties the request to
// the current session (so a 401 can stop everything at once) and turns error bodies into
// ApiError with the queen's code and message.

const KEY_NAME = 'rbee-api-key';

/** The stored key, or '' when none. sessionStorage: gone when the tab closes. */
export function getKey() {
  try { return sessionStorage.getItem(KEY_NAME) || ''; } catch { return ''; }
}
export function setKey(key) {
  try { sessionStorage.setItem(KEY_NAME, key); } catch { /* storage off: key lives nowhere */ }
}
export function clearKey() {
  try { sessionStorage.removeItem(KEY_NAME); } catch { /* nothing stored */ }
}

/** An error the queen answered (or the network failed with: status 0, code "network"). */
export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** A 401: the page locks itself; callers need not show anything more. */
export class AuthError extends ApiError {
  constructor(message = 'an API key is needed') {
    super(401, 'unauthorized', message);
    this.name = 'AuthError';
  }
}

/** True for errors that mean "we stopped on purpose" (abort, lock): nothing to report. */
export function isQuiet(err) {
  return err instanceof AuthError || err?.name === 'AbortError';
}

// One controller per session: lock() aborts it, so every fetch and stream started under the
// old session ends, whoever started it.
let session = new AbortController();
let locked = false;
let onUnauthorized = () => {};

export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }
export function isLocked() { return locked; }

/** Stop every request of this session and refuse new ones until unlock(). */
export function lockSession() {
  locked = true;
  session.abort();
}

/** A new session: requests may go out again (with whatever key is stored now). */
export function unlockSession() {
  locked = false;
  session = new AbortController();
}

function combine(signal) {
  if (!signal) return session.signal;
  if (AbortSignal.any) return AbortSignal.any([signal, session.signal]);
  // Older browsers: forward both into one controller.
  const both = new AbortController();
  for (const s of [signal, session.signal]) {
    if (s.aborted) both.abort();
    else s.addEventListener('abort', () => both.abort(), { once: true });
  }
  return both.signal;
}

/**
 * fetch() a queen path with the key and the session's signal. Resolves to the Response
 * when it is ok (2xx); throws ApiError (AuthError for 401) otherwise.
 * opts.json: a value sent as a JSON body.
 */
export async function apiFetch(path, opts = {}) {
  if (locked) throw new AuthError();
  const headers = new Headers(opts.headers || {});
  const key = getKey();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const init = { method: opts.method || 'GET', headers, signal: combine(opts.signal), cache: 'no-store' };
  if (opts.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(opts.json);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `cannot reach the queen (${init.method} ${path}): ${err.message || err}`);
  }
  if (res.status === 401) {
    const body = await res.json().catch(() => null);
    onUnauthorized(body?.error?.message || 'an API key is needed');
    throw new AuthError(body?.error?.message);
  }
  // An answer that was on its way when the page locked belongs to the old session.
  if (locked) throw new AuthError();
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON: a proxy's page, say */ }
    const e = body?.error;
    const message = e?.message || `${init.method} ${path} answered ${res.status} ${res.statusText}`.trim();
    throw new ApiError(res.status, e?.code || `http_${res.status}`, message, body);
  }
  return res;
}

/** apiFetch and decode the JSON answer. */
export async function apiJSON(path, opts = {}) {
  const res = await apiFetch(path, opts);
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(res.status, 'bad_json', `${path} did not answer JSON`);
  }
}
