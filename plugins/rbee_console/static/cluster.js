// The cluster page: each hive with its devices (memory bars), workers and models, drawn
// from the live feed's hive list.

import { state, subscribe } from './state.js';
import { bytes, ago, duration, shortName } from './format.js';
import { el, morphList } from './ui.js';

const EMPTY = 'No hives yet: the queen starts one on this machine for the first job.';

let root;

/** A hive's model entry may be a name or an object with one. */
export function modelName(m) {
  if (m == null) return '';
  if (typeof m === 'string') return m;
  return String(m.name ?? m.ref ?? m.model ?? '');
}

function deviceView(dev) {
  const total = Number(dev.total_memory) || 0;
  const free = Number(dev.free_memory) || 0;
  const used = Math.max(0, total - free);
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const bar = el('div', { class: 'bar', role: 'img', 'aria-label': `${pct.toFixed(0)}% of memory used` });
  bar.style.width = `${pct.toFixed(1)}%`;
  if (pct > 90) bar.classList.add('high');
  const cores = dev.cores ? ` · ${dev.cores} cores` : '';
  return el('div', { class: 'device', dataset: { device: String(dev.id) } },
    el('div', { class: 'device-head' },
      el('span', { class: 'device-id' }, String(dev.id)),
      el('span', { class: 'device-name muted' }, `${dev.name || ''}${cores}`)),
    el('div', { class: 'meter' }, bar),
    el('div', { class: 'bar-label muted' }, `${bytes(used)} / ${bytes(total)}`));
}

function workerView(w) {
  const inUse = Number(w.slots_in_use) || 0;
  const slots = w.slots ?? '?';
  const queued = Number(w.queued) || 0;
  const backend = [w.backend, w.quantization].filter(Boolean).join(' ');
  const keep = w.keep_alive === -1 ? 'pinned' : (w.keep_alive != null ? `keep-alive ${duration(w.keep_alive)}` : '');
  return el('li', { class: `worker ${w.state || ''}`, dataset: { worker: String(w.id) } },
    el('div', { class: 'worker-head' },
      el('span', { class: 'worker-model' }, String(w.model ?? '')),
      el('span', { class: `worker-state pill ${w.state || ''}` }, String(w.state ?? ''))),
    el('div', { class: 'worker-facts muted' },
      el('span', { class: 'worker-backend' }, backend),
      el('span', { class: 'worker-device' }, `on ${w.device ?? '?'}`),
      ...(Array.isArray(w.parts) ? w.parts : []).map(([hive, layers]) =>
        el('span', { class: 'worker-part' }, `+ ${layers} layers on hive ${hive}`)),
      el('span', { class: 'worker-slots' }, `${inUse} / ${slots} · ${queued} queued`),
      el('span', { class: 'worker-memory', title: `reserved ${bytes(w.reserved)}` },
        `${w.memory == null ? '—' : bytes(w.memory)} resident`),
      el('span', { class: 'worker-served' }, `${w.jobs_served ?? 0} ${w.jobs_served === 1 ? 'job' : 'jobs'} served`),
      keep && el('span', { class: 'worker-keep' }, keep),
      el('span', { class: 'worker-id' }, String(w.id))));
}

/** The hive's backends: an object of name -> formats (GET /hives), or a list. */
function backendNames(backends) {
  if (Array.isArray(backends)) return backends.map(String);
  return backends && typeof backends === 'object' ? Object.keys(backends) : [];
}

/** What a hive says of itself (rbee-hive --label); a Ray node's hive says which node. */
function labelViews(labels) {
  if (!labels || typeof labels !== 'object') return [];
  return Object.entries(labels).map(([key, value]) => key === 'ray_node'
    ? el('span', { class: 'hive-label pill', title: `Ray node ${value}` }, `Ray node ${String(value).slice(0, 8)}`)
    : el('span', { class: 'hive-label pill' }, `${key}=${value}`));
}

/** A part of a split model this hive serves to a worker on another hive. */
function partView(p) {
  return el('li', { class: 'part muted', dataset: { part: String(p.id) } },
    `${p.layers} layers of ${p.model} for the worker on hive ${p.for_hive}`
    + (p.memory == null ? '' : ` · ${bytes(p.memory)} resident`));
}

function hiveView(h) {
  const workers = Array.isArray(h.workers) ? h.workers : [];
  const parts = Array.isArray(h.parts) ? h.parts : [];
  const devices = Array.isArray(h.devices) ? h.devices : [];
  const models = (Array.isArray(h.models) ? h.models : []).map(modelName).filter(Boolean);
  const beat = el('span', { class: 'hive-heartbeat muted', dataset: { t: String(h.last_heartbeat ?? '') } },
    h.last_heartbeat ? `heartbeat ${ago(h.last_heartbeat)}` : 'no heartbeat yet');
  return el('article', { class: `hive card ${h.state || ''}`, dataset: { hive: String(h.name) } },
    el('header', { class: 'hive-head' },
      el('h2', {}, String(h.name)),
      el('span', { class: `hive-state pill ${h.state || ''}` }, String(h.state ?? '')),
      beat),
    el('div', { class: 'hive-meta muted' },
      el('span', { class: 'hive-url' }, String(h.url ?? '')),
      backendNames(h.backends).length ? el('span', {}, `backends: ${backendNames(h.backends).join(', ')}`) : null,
      h.started_by_queen ? el('span', {}, 'started by the queen') : null,
      ...labelViews(h.labels)),
    h.problem ? el('p', { class: 'hive-problem error' }, String(h.problem)) : null,
    el('h3', {}, 'Devices'),
    devices.length ? el('div', { class: 'devices' }, ...devices.map(deviceView))
      : el('p', { class: 'muted' }, 'Devices not known yet.'),
    el('h3', {}, `Workers (${workers.length})`),
    workers.length ? el('ul', { class: 'workers' }, ...workers.map(workerView))
      : el('p', { class: 'muted' }, 'No workers: one starts for the next job.'),
    parts.length ? el('h3', {}, `Parts of split models (${parts.length})`) : null,
    parts.length ? el('ul', { class: 'hive-parts' }, ...parts.map(partView)) : null,
    el('h3', {}, 'Models'),
    el('ul', { class: 'hive-models' }, ...models.map((m) => el('li', { title: m }, shortName(m)))),
    models.length ? null : el('p', { class: 'muted' }, 'No models on this hive yet.'));
}

function render() {
  const hives = [...state.hives].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  if (!hives.length) {
    root.replaceChildren(el('p', { class: 'empty' }, EMPTY));
    return;
  }
  // Patched in place, not replaced: the elements stay the same from one heartbeat to the next.
  morphList(root, hives.map(hiveView), (node) => node.dataset?.hive);
}

// "N s ago" moves every second without waiting for the next heartbeat.
function tickHeartbeats() {
  for (const span of root.querySelectorAll('.hive-heartbeat')) {
    const t = Number(span.dataset.t);
    if (t) span.textContent = `heartbeat ${ago(t)}`;
  }
}

export function initCluster() {
  root = document.getElementById('hives');
  subscribe('hives', render);
  render();
  setInterval(tickHeartbeats, 1000);
}
