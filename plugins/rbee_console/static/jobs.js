// The jobs table (live from the feed) and one job's view (its stream replayed from the
// first event: narration, tokens, the end).

import { apiFetch, apiJSON, ApiError } from './api.js';
import { followStream } from './sse.js';
import { state, subscribe, upsertJobs, jobsNewestFirst } from './state.js';
import { duration, preview, ago, clock } from './format.js';
import { el, report, morphList } from './ui.js';

const LIVE = new Set(['queued', 'running']);

// ---------------------------------------------------------------------------------------
// The table

let tbody;
let renderPending = false;

function row(job) {
  const tr = el('tr', { class: `job ${job.state || ''}`, dataset: { job: job.job_id }, tabindex: '0' },
    el('td', { class: 'job-state' }, el('span', { class: `pill ${job.state || ''}` }, String(job.state ?? ''))),
    el('td', { class: 'job-model' }, String(job.model ?? '')),
    el('td', { class: 'job-worker' }, String(job.worker ?? '—')),
    el('td', { class: 'job-tokens num' }, job.tokens == null ? '—' : String(job.tokens)),
    el('td', { class: 'job-ttft num' }, duration(job.ttft)),
    el('td', { class: 'job-duration num' }, duration(job.duration)),
    el('td', { class: 'job-created muted', title: clock(job.created_at) }, ago(job.created_at)),
    el('td', { class: 'job-prompt' }, preview(job.prompt, 60)));
  if (job.error) tr.title = String(job.error);
  return tr;
}

function renderTable() {
  renderPending = false;
  const jobs = jobsNewestFirst();
  if (!jobs.length) {
    tbody.replaceChildren(el('tr', { class: 'empty-row' },
      el('td', { colspan: '8', class: 'empty' }, 'No jobs yet. Submit one from the playground or rbee-keeper infer.')));
    return;
  }
  // Keyed by job: a row keeps its element while its job is listed (clicks and focus stay).
  morphList(tbody, jobs.map(row), (node) => node.dataset?.job);
}

// Many updates can come at once (a snapshot, a burst of jobs): draw once for all of them.
function scheduleTable() {
  if (renderPending) return;
  renderPending = true;
  setTimeout(renderTable, 30);
}

/** A GET /jobs record as a feed Brief (its preview, ttft and duration worked out). */
function briefOf(r) {
  const req = r.request || {};
  let prompt = req.prompt;
  if (!prompt && Array.isArray(req.messages)) {
    const users = req.messages.filter((m) => m?.role === 'user');
    prompt = users.at(-1)?.content;
  }
  if (!prompt && Array.isArray(req.embed)) prompt = `embed ${req.embed.length} text(s)`;
  const brief = {
    job_id: r.job_id, state: r.state, model: r.model ?? req.model, worker: r.worker,
    created_at: r.created_at, started_at: r.started_at, first_token_at: r.first_token_at,
    finished_at: r.finished_at, tokens: r.tokens ?? r.result?.completion_tokens,
    prompt: typeof prompt === 'string' ? preview(prompt, 120) : undefined,
  };
  if (r.first_token_at && r.created_at) brief.ttft = r.first_token_at - r.created_at;
  if (r.finished_at && r.created_at) brief.duration = r.finished_at - r.created_at;
  if (r.state === 'failed' && r.result?.message) brief.error = r.result.message;
  return brief;
}

/** Fetch the newest 100 jobs once (the feed only tells what changes from now on). */
export async function loadJobs() {
  try {
    const page = await apiJSON('/jobs?limit=100');
    upsertJobs((page?.jobs || []).filter((r) => r?.job_id).map(briefOf), true);
  } catch (err) {
    report(err, null, 'Jobs: ');
  }
}

// ---------------------------------------------------------------------------------------
// One job

const view = {};       // the page's elements
let current = null;    // {id, controller, final, text}

function setState(s) {
  view.state.textContent = s;
  view.state.className = `pill ${s}`;
  view.cancel.disabled = !LIVE.has(s);
}

function showEnd(text, isError) {
  view.end.textContent = text;
  view.end.classList.toggle('error', isError);
  view.end.hidden = false;
}

function onJobEvent(job, ev) {
  if (current !== job) return;
  const d = ev.data || {};
  switch (ev.type) {
    case 'token':
      job.text.appendData(String(d.text ?? ''));
      break;
    case 'narration':
      view.narration.append(el('li', {},
        el('span', { class: 'actor' }, String(d.actor ?? '')),
        ' ',
        el('span', { class: 'message' }, String(d.message ?? d.action ?? ''))));
      break;
    case 'end': {
      job.final = d.outcome === 'cancelled' ? 'cancelled' : 'completed';
      setState(job.final);
      const parts = [job.final];
      if (d.finish_reason) parts.push(`finish reason ${d.finish_reason}`);
      if (d.prompt_tokens != null) parts.push(`${d.prompt_tokens} prompt tokens`);
      if (d.completion_tokens != null) parts.push(`${d.completion_tokens} completion tokens`);
      if (d.dimensions != null) parts.push(`${d.dimensions} dimensions`);
      showEnd(parts.join(' · '), false);
      break;
    }
    case 'error':
      job.final = 'failed';
      setState('failed');
      showEnd(`failed: ${d.code ? `${d.code}: ` : ''}${d.message ?? 'unknown error'}`, true);
      break;
    default: break;
  }
}

/** Show job `id` and follow its stream from the first event. */
export function openJob(id) {
  closeJob();
  const job = { id, controller: new AbortController(), final: null, text: document.createTextNode('') };
  current = job;
  view.id.textContent = id;
  view.output.replaceChildren(job.text);
  view.narration.replaceChildren();
  view.end.hidden = true;
  view.end.textContent = '';
  view.error.hidden = true;
  view.prompt.textContent = '';
  const known = state.jobs.get(id);
  setState(known?.state || 'loading');
  view.cancel.disabled = !LIVE.has(known?.state);
  if (known?.prompt) view.prompt.textContent = known.prompt;

  // The record: its state (the feed may not know an old job) and the whole prompt.
  apiJSON(`/jobs/${encodeURIComponent(id)}`, { signal: job.controller.signal }).then((r) => {
    if (current !== job) return;
    if (!job.final && r?.state) setState(r.state);
    const req = r?.request || {};
    const prompt = req.prompt ?? req.messages?.filter((m) => m?.role === 'user').at(-1)?.content;
    if (prompt) view.prompt.textContent = String(prompt);
  }).catch((err) => {
    if (current !== job) return;
    if (err instanceof ApiError && err.code === 'unknown_job') setState('unknown');
    report(err, view.error);
  });

  followStream(`/jobs/${encodeURIComponent(id)}/stream`, (ev) => onJobEvent(job, ev), {
    signal: job.controller.signal,
    onRetry: (err) => { if (current === job) report(err, view.error, 'Stream dropped, reconnecting: '); },
  }).then(() => {
    if (current === job) view.error.hidden = true;
  }).catch((err) => {
    if (current === job) report(err, view.error, 'Stream: ');
  });
}

/** Leave the job view: its stream is no longer read (the job itself goes on). */
export function closeJob() {
  if (!current) return;
  current.controller.abort();
  current = null;
}

async function cancel() {
  const job = current;
  if (!job) return;
  view.cancel.disabled = true;
  try {
    await apiFetch(`/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
  } catch (err) {
    if (current === job) {
      report(err, view.error, 'Cancel: ');
      view.cancel.disabled = job.final != null;
    }
  }
}

// The feed moves the state of the job on screen until its stream says how it ended.
function onFeedJobs(ids) {
  if (!current || current.final) return;
  if (ids && !ids.includes(current.id)) return;
  const known = state.jobs.get(current.id);
  if (known?.state) setState(known.state);
}

export function initJobs() {
  tbody = document.getElementById('jobs-body');
  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr.job');
    if (tr) location.hash = `#/jobs/${encodeURIComponent(tr.dataset.job)}`;
  });
  tbody.addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr.job');
    if (tr && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      location.hash = `#/jobs/${encodeURIComponent(tr.dataset.job)}`;
    }
  });
  for (const k of ['id', 'state', 'output', 'narration', 'end', 'cancel', 'error', 'prompt']) {
    view[k] = document.getElementById(`job-${k}`);
  }
  view.cancel.addEventListener('click', cancel);
  subscribe('jobs', scheduleTable);
  subscribe('jobs', onFeedJobs);
  renderTable();
  // "3 min ago" keeps moving while the page is open.
  setInterval(() => { if (!document.getElementById('page-jobs').hidden) scheduleTable(); }, 10000);
}
