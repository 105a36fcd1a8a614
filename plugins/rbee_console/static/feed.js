// The one live connection of the page: GET /events. It never ends by itself; when it
// drops we come back after a second with Last-Event-ID, and the queen sends what we missed
// (or a fresh snapshot).

import { isQuiet } from './api.js';
import { openEvents, readEvents, sleep } from './sse.js';
import { applySnapshot, setHives, upsertJobs, addSample } from './state.js';
import { toast } from './ui.js';

let controller = null;
let lastId = null;
let onStatus = () => {};

/** fn('live' | 'reconnecting') as the connection comes and goes. */
export function onFeedStatus(fn) { onStatus = fn; }

function handle(ev) {
  const d = ev.data;
  switch (ev.type) {
    case 'snapshot': applySnapshot(d); break;
    case 'hives': setHives(d?.hives); break;
    case 'jobs': upsertJobs(d?.jobs); break;
    case 'stats': addSample(d); break;
    default: break; // an event type from a newer queen: ignore
  }
}

async function run(signal) {
  let warned = false;
  while (!signal.aborted) {
    try {
      const res = await openEvents('/events', { signal, lastId });
      onStatus('live');
      warned = false;
      const out = await readEvents(res, handle, lastId);
      lastId = out.lastId;
    } catch (err) {
      if (isQuiet(err) || signal.aborted) return;
      // Say it once per outage, not once a second.
      if (!warned) toast(`Live feed: ${err.message || err}; retrying`);
      warned = true;
    }
    if (signal.aborted) return;
    onStatus('reconnecting');
    try { await sleep(1000, signal); } catch { return; }
  }
}

export function startFeed() {
  stopFeed();
  controller = new AbortController();
  run(controller.signal);
}

/** Stop the connection; `forget` drops the last id too (a new session starts from a snapshot). */
export function stopFeed(forget = false) {
  controller?.abort();
  controller = null;
  if (forget) lastId = null;
}
