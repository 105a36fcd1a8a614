// Server-Sent Events read with fetch(), not EventSource: EventSource cannot send the
// Authorization header, and the key must never go in a URL.

import { apiFetch, ApiError, isQuiet } from './api.js';

/**
 * Read an SSE response body to its end, calling onEvent({type, data, id}) per message
 * (data parsed as JSON when it is JSON). Resolves to {done, lastId}: done is true when the
 * stream said `data: [DONE]`. Rejects with AbortError when its request is aborted.
 */
export async function readEvents(response, onEvent, lastId = null) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let carry = '';      // text after the last complete line
  let cr = false;      // the previous chunk ended in \r: a \n starting this one is its pair
  let type = '';
  let data = [];
  let hasData = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { done: false, lastId };
      let text = decoder.decode(value, { stream: true });
      if (cr && text.startsWith('\n')) text = text.slice(1);
      cr = text.endsWith('\r');
      // Lines end in \r\n, \n or \r (the SSE spec allows all three).
      const lines = (carry + text).split(/\r\n|\r|\n/);
      carry = lines.pop();
      for (const line of lines) {
        if (line === '') {
          // A blank line ends a message.
          if (hasData) {
            const raw = data.join('\n');
            if (raw === '[DONE]') return { done: true, lastId };
            let parsed = raw;
            try { parsed = JSON.parse(raw); } catch { /* plain text data */ }
            try {
              onEvent({ type: type || 'message', data: parsed, id: lastId });
            } catch (err) {
              // A bug in one page's drawing must not cut the stream for the others.
              console.error('event handler failed', err);
            }
          }
          type = ''; data = []; hasData = false;
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') type = val;
        else if (field === 'data') { data.push(val); hasData = true; }
        // Ids stay strings: the feed's are bigger than a double holds exactly.
        else if (field === 'id' && !val.includes('\0')) lastId = val;
      }
    }
  } finally {
    reader.releaseLock?.();
  }
}

/** Open an SSE request; throws ApiError when the answer is not an event stream. */
export async function openEvents(path, { method = 'GET', json, signal, lastId } = {}) {
  const headers = { Accept: 'text/event-stream' };
  if (lastId != null && lastId !== '') headers['Last-Event-ID'] = String(lastId);
  const res = await apiFetch(path, { method, json, signal, headers });
  const type = res.headers.get('Content-Type') || '';
  if (!type.includes('text/event-stream')) {
    res.body?.cancel().catch(() => {});
    throw new ApiError(res.status, 'not_a_stream', `${path} did not answer an event stream (${type || 'no type'})`);
  }
  return res;
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
});

/**
 * Follow a job's stream (GET) to its [DONE], reconnecting with Last-Event-ID when the
 * connection drops, so no event is lost or repeated. Resolves when the stream is done.
 */
export async function followStream(path, onEvent, { signal, onRetry } = {}) {
  let lastId = null;
  let failures = 0;
  for (;;) {
    try {
      const res = await openEvents(path, { signal, lastId });
      const out = await readEvents(res, (ev) => { failures = 0; onEvent(ev); }, lastId);
      lastId = out.lastId;
      if (out.done) return;
    } catch (err) {
      // Aborts, 401s and answers like 404 will not get better by asking again.
      if (isQuiet(err) || (err instanceof ApiError && err.status >= 400 && err.status < 500)) throw err;
      if (++failures > 30) throw err;
      onRetry?.(err);
    }
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    await sleep(1000, signal);
  }
}

export { sleep };
