// The playground: a chat with any model, one job per turn, the answer streamed token by
// token, the job's narration beside it.

import { apiFetch, apiJSON, isQuiet } from './api.js';
import { followStream } from './sse.js';
import { onModels } from './models.js';
import { shortName } from './format.js';
import { el, report } from './ui.js';

const PREFERRED = 'smollm2-135m';
const view = {};
const history = []; // finished turns: {user, assistant, kept}; only kept ones are sent again
let turn = null;    // the streaming turn: {jobId, controller, bubble, text}

function fillModels({ models, known }) {
  const names = [];
  for (const m of models) { const n = String(m.name ?? m.ref ?? ''); if (n && !names.includes(n)) names.push(n); }
  for (const n of known) if (n && !names.includes(n)) names.push(n);
  const chosen = view.model.value;
  // The value is what a job names; the text, for a long reference, the file it names.
  view.model.replaceChildren(...names.map((n) => el('option', { value: n, title: n }, shortName(n))));
  if (names.includes(chosen)) view.model.value = chosen;
  else if (names.includes(PREFERRED)) view.model.value = PREFERRED;
  else if (names.length) view.model.value = names[0];
}

function bubble(role, text = '') {
  const div = el('div', { class: `msg ${role}` }, text);
  view.messages.append(div);
  div.scrollIntoView({ block: 'end' });
  return div;
}

function setStreaming(on) {
  view.send.disabled = on;
  view.stop.disabled = !on;
}

/** A number input's value, or the default when empty or not a number. */
function numberOf(input, fallback) {
  const v = input.value.trim();
  if (v === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

function requestBody(userText) {
  const messages = [];
  const system = view.system.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  for (const t of history) {
    if (!t.kept) continue;
    messages.push({ role: 'user', content: t.user }, { role: 'assistant', content: t.assistant });
  }
  messages.push({ role: 'user', content: userText });
  const body = {
    model: view.model.value,
    prompt: userText,
    messages,
    max_tokens: Math.round(numberOf(view.maxTokens, 128)),
    temperature: numberOf(view.temperature, 0.7),
    top_p: numberOf(view.topP, 1.0),
  };
  const seed = view.seed.value.trim();
  if (seed !== '') body.seed = Math.round(Number(seed));
  return body;
}

function narrate(d) {
  view.narration.append(el('li', {},
    el('span', { class: 'actor' }, String(d.actor ?? '')), ' ',
    el('span', { class: 'message' }, String(d.message ?? d.action ?? ''))));
}

function markError(div, message) {
  div.classList.add('error');
  div.append(el('span', { class: 'msg-error' }, `${div.textContent ? '\n' : ''}${message}`));
}

async function send() {
  const userText = view.input.value.trim();
  if (!userText || turn) return;
  if (!view.model.value) { report(new Error('no model to choose from yet'), view.error); return; }
  view.error.hidden = true;
  const body = requestBody(userText);
  view.input.value = '';
  bubble('user', userText);
  const div = bubble('assistant');
  const text = document.createTextNode('');
  div.append(text);
  view.narration.replaceChildren();
  const t = { jobId: null, controller: new AbortController(), bubble: div, text, outcome: null };
  turn = t;
  setStreaming(true);
  try {
    const job = await apiJSON('/jobs', { method: 'POST', json: body, signal: t.controller.signal });
    t.jobId = job.job_id;
    const url = typeof job.sse_url === 'string' && job.sse_url.startsWith('/')
      ? job.sse_url : `/jobs/${encodeURIComponent(job.job_id)}/stream`;
    await followStream(url, (ev) => {
      const d = ev.data || {};
      if (ev.type === 'token') { text.appendData(String(d.text ?? '')); div.scrollIntoView({ block: 'end' }); }
      else if (ev.type === 'narration') narrate(d);
      else if (ev.type === 'end') t.outcome = d.outcome === 'cancelled' ? 'cancelled' : 'completed';
      else if (ev.type === 'error') {
        t.outcome = 'failed';
        markError(div, `${d.code ? `${d.code}: ` : ''}${d.message ?? 'the job failed'}`);
      }
    }, { signal: t.controller.signal });
  } catch (err) {
    if (!isQuiet(err)) { t.outcome = 'failed'; markError(div, err.message || String(err)); }
    else if (!t.outcome) t.outcome = 'cancelled';
  } finally {
    if (t.outcome === 'cancelled') {
      div.classList.add('stopped');
      div.append(el('span', { class: 'msg-flag' }, ' (stopped)'));
    }
    // Only a whole answer is sent back as history: a stopped or failed one would mislead.
    history.push({ user: userText, assistant: text.data, kept: t.outcome === 'completed' });
    if (turn === t) turn = null;
    setStreaming(false);
    view.input.focus();
  }
}

async function stop() {
  const t = turn;
  if (!t) return;
  view.stop.disabled = true;
  if (!t.jobId) { t.controller.abort(); return; } // not accepted yet: just stop waiting
  try {
    // The stream then ends with `end` outcome cancelled, which marks the bubble.
    await apiFetch(`/jobs/${encodeURIComponent(t.jobId)}`, { method: 'DELETE' });
  } catch (err) {
    report(err, view.error, 'Stop: ');
    if (turn === t) view.stop.disabled = false;
  }
}

function clear() {
  if (turn) { stop(); turn.controller.abort(); }
  history.length = 0;
  view.messages.replaceChildren();
  view.narration.replaceChildren();
  view.error.hidden = true;
}

/** Forget the conversation (the page locked): abort without cancelling anything. */
export function resetPlayground() {
  turn?.controller.abort();
  history.length = 0;
  view.messages.replaceChildren();
  view.narration.replaceChildren();
  view.model.replaceChildren();
}

export function initPlayground() {
  for (const [k, id] of Object.entries({
    model: 'pg-model', system: 'pg-system', temperature: 'pg-temperature', maxTokens: 'pg-max-tokens',
    topP: 'pg-top-p', seed: 'pg-seed', messages: 'pg-messages', input: 'pg-input', send: 'pg-send',
    stop: 'pg-stop', clear: 'pg-clear', narration: 'pg-narration', error: 'pg-error',
  })) view[k] = document.getElementById(id);
  view.send.addEventListener('click', send);
  view.stop.addEventListener('click', stop);
  view.clear.addEventListener('click', clear);
  view.input.addEventListener('keydown', (e) => {
    // Enter sends, Shift+Enter is a new line; not while an IME composes a character.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  setStreaming(false);
  onModels(fillModels);
}
