// The models page: what the hives hold (GET /models), downloads with progress, removal.
// It also keeps the model names the playground offers.

import { apiFetch, apiJSON, isQuiet } from './api.js';
import { openEvents, readEvents } from './sse.js';
import { state, subscribe } from './state.js';
import { bytes, clock, num, shortName } from './format.js';
import { el, report, morphList } from './ui.js';
import { modelName } from './cluster.js';

let catalog = { models: [], known: [] };
const listeners = new Set();
const view = {};
let loading = null;
let download = null; // the running download's AbortController

/** fn({models, known}) after each load of GET /models. */
export function onModels(fn) { listeners.add(fn); fn(catalog); }

function row(m) {
  const name = String(m.name ?? m.ref ?? '');
  const short = shortName(name);
  const ref = String(m.ref || m.name || '');
  const remove = el('button', { type: 'button', class: 'model-remove danger small', dataset: { ref } }, 'Remove');
  return el('tr', { class: 'model', dataset: { model: short, name, ref }, title: ref },
    el('td', { class: 'model-name' }, short,
      short !== name ? el('div', { class: 'model-ref muted small-text' }, name) : null,
      m.problem ? el('div', { class: 'error small-text' }, `stale: ${m.problem}`) : null),
    el('td', { class: 'model-source' }, String(m.source ?? '')),
    el('td', { class: 'model-format' }, String(m.format ?? '')),
    el('td', { class: 'model-size num' }, bytes(m.size)),
    el('td', { class: 'model-hive' }, String(m.hive ?? '')),
    el('td', { class: 'model-added muted' }, m.added_at ? clock(m.added_at) : '—'),
    el('td', {}, remove));
}

function render() {
  const models = catalog.models;
  if (!models.length) {
    view.body.replaceChildren(el('tr', {}, el('td', { colspan: '7', class: 'empty' },
      'No models downloaded yet. A job downloads its model, or use the form above.')));
  } else {
    morphList(view.body, models.map(row), (node) => node.dataset?.name && `${node.dataset.name}@${node.querySelector('.model-hive')?.textContent}`);
  }
  view.known.textContent = catalog.known.length ? `Catalog names: ${catalog.known.join(', ')}` : '';
}

/** (Re)load GET /models; concurrent calls share one request. */
export function loadModels() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const data = await apiJSON('/models');
      catalog = {
        models: Array.isArray(data?.models) ? data.models : [],
        known: Array.isArray(data?.known) ? data.known.map(String) : [],
      };
      render();
      for (const fn of listeners) fn(catalog);
    } catch (err) {
      report(err, null, 'Models: ');
    } finally {
      loading = null;
    }
  })();
  return loading;
}

/** Forget the list (the page locked). */
export function clearModels() {
  download?.abort();
  catalog = { models: [], known: [] };
  render();
  for (const fn of listeners) fn(catalog);
  view.error.hidden = true;
}

async function remove(ref, button, name) {
  view.error.hidden = true;
  button.disabled = true;
  try {
    await apiFetch(`/models?model=${encodeURIComponent(ref)}`, { method: 'DELETE' });
  } catch (err) {
    report(err, view.error, `Cannot remove ${name || ref}: `);
  } finally {
    button.disabled = false;
    loadModels();
  }
}

function setStatus(text, isError = false) {
  view.status.textContent = text;
  view.status.classList.toggle('error', isError);
}

function progressText(p) {
  const done = Number(p.done) || 0;
  const total = Number(p.total) || 0;
  const isBytes = !p.unit || p.unit === 'bytes';
  const amount = (x) => (isBytes ? bytes(x) : `${x} ${p.unit}`);
  const parts = [];
  if (total > 0) parts.push(`${Math.floor((done / total) * 100)}%`);
  parts.push(total > 0 ? `${amount(done)} of ${amount(total)}` : amount(done));
  if (p.rate) parts.push(isBytes ? `${bytes(p.rate)}/s` : `${num(p.rate)} ${p.unit}/s`);
  return parts.join(' · ');
}

function onDownloadEvent(ev) {
  const d = ev.data || {};
  if (ev.type === 'narration') {
    const p = d.progress;
    if (p && Number(p.total) > 0) {
      view.progress.value = Math.min(100, (Number(p.done) / Number(p.total)) * 100);
      setStatus(progressText(p));
    } else {
      setStatus(String(d.message ?? d.action ?? ''));
    }
  } else if (ev.type === 'end') {
    view.progress.value = 100;
    const name = d.model?.name || d.model?.ref || '';
    setStatus(`${name ? `${shortName(name)}: ` : ''}done${d.model?.size ? ` (${bytes(d.model.size)})` : ''}`);
  } else if (ev.type === 'error') {
    setStatus(`${d.code ? `${d.code}: ` : ''}${d.message ?? 'the download failed'}`, true);
  }
}

async function startDownload(e) {
  e.preventDefault();
  const ref = view.ref.value.trim();
  if (!ref) { setStatus('Name a model: a catalog name or a reference (hf:, https:, file:, pypi:).', true); return; }
  download?.abort();
  const controller = new AbortController();
  download = controller;
  view.button.disabled = true;
  view.progress.hidden = false;
  view.progress.removeAttribute('value'); // indeterminate until the size is known
  setStatus(`Starting ${ref}…`);
  try {
    const res = await openEvents('/models/download', { method: 'POST', json: { model: ref }, signal: controller.signal });
    const out = await readEvents(res, onDownloadEvent);
    if (!out.done && !view.status.classList.contains('error') && view.progress.value !== 100) {
      setStatus('The connection dropped; the download goes on at the hive. Ask again to follow it.', true);
    }
  } catch (err) {
    if (!isQuiet(err)) setStatus(err.message || String(err), true);
    report(err, null, 'Download: ');
  } finally {
    if (download === controller) download = null;
    view.button.disabled = false;
    loadModels();
  }
}

// Reload when the models the hives report change (a job downloaded one, a CLI removed one).
let lastSig = '';
function onHives() {
  const sig = state.hives.map((h) => `${h.name}:${(h.models || []).map(modelName).sort().join(',')}`).sort().join('|');
  if (sig !== lastSig) {
    lastSig = sig;
    loadModels(); // shares the request with any load already under way
  }
}

export function initModels() {
  view.body = document.getElementById('models-body');
  view.error = document.getElementById('models-error');
  view.known = document.getElementById('models-known');
  view.ref = document.getElementById('model-ref');
  view.button = document.getElementById('model-download');
  view.progress = document.getElementById('download-progress');
  view.status = document.getElementById('download-status');
  view.body.addEventListener('click', (e) => {
    const button = e.target.closest('button.model-remove');
    if (button) remove(button.dataset.ref, button, button.closest('tr')?.dataset.model);
  });
  document.getElementById('download-form').addEventListener('submit', startDownload);
  document.getElementById('models-refresh').addEventListener('click', () => loadModels());
  subscribe('hives', onHives);
  render();
}
