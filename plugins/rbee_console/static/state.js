// What the live feed knows: hives, recent jobs and load samples. Pages subscribe to the
// parts they draw; the feed and the one-off GET /jobs write here.

const JOBS_KEPT = 200;
const STATS_WINDOW = 600; // seconds of samples kept: the charts' 10 minutes

export const state = {
  hives: [],
  jobs: new Map(), // job_id -> Brief
  stats: [],
  tick: 1,
};

const listeners = { hives: new Set(), jobs: new Set(), stats: new Set() };

/** Call fn() whenever `part` ('hives' | 'jobs' | 'stats') changes; returns unsubscribe. */
export function subscribe(part, fn) {
  listeners[part].add(fn);
  return () => listeners[part].delete(fn);
}

function emit(part, detail) {
  for (const fn of listeners[part]) {
    try { fn(detail); } catch (err) { console.error(`a ${part} view failed`, err); }
  }
}

// A state only moves forward: an older copy (a GET /jobs answer that crossed the feed's
// update) must not turn a finished job back into a running one.
const RANK = { queued: 0, running: 1, completed: 2, failed: 2, cancelled: 2 };

function mergeJob(brief, fillOnly = false) {
  if (!brief || !brief.job_id) return;
  const old = state.jobs.get(brief.job_id);
  if (!old) { state.jobs.set(brief.job_id, { ...brief }); return; }
  const merged = { ...old };
  for (const [k, v] of Object.entries(brief)) {
    if (v === undefined || v === null) continue;
    if (fillOnly && merged[k] != null) continue;
    merged[k] = v;
  }
  if ((RANK[brief.state] ?? 0) < (RANK[old.state] ?? 0)) merged.state = old.state;
  state.jobs.set(brief.job_id, merged);
}

function trimJobs() {
  if (state.jobs.size <= JOBS_KEPT) return;
  const newest = [...state.jobs.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
  for (const job of newest.slice(JOBS_KEPT)) state.jobs.delete(job.job_id);
}

function trimStats() {
  const last = state.stats.at(-1);
  if (!last) return;
  const from = last.t - STATS_WINDOW;
  let i = 0;
  while (i < state.stats.length && state.stats[i].t < from) i++;
  if (i) state.stats.splice(0, i);
}

/** Jobs newest first. */
export function jobsNewestFirst() {
  return [...state.jobs.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
}

export function applySnapshot(data) {
  state.hives = Array.isArray(data?.hives) ? data.hives : [];
  state.jobs = new Map();
  for (const job of data?.jobs || []) mergeJob(job);
  trimJobs();
  state.stats = (Array.isArray(data?.stats) ? data.stats : []).filter((s) => s && Number.isFinite(s.t));
  state.stats.sort((a, b) => a.t - b.t);
  trimStats();
  if (Number.isFinite(data?.tick)) state.tick = data.tick;
  emit('hives'); emit('jobs'); emit('stats');
}

export function setHives(hives) {
  state.hives = Array.isArray(hives) ? hives : [];
  emit('hives');
}

/** Merge briefs in; fillOnly: only fill what the feed has not told (a slower, older source). */
export function upsertJobs(jobs, fillOnly = false) {
  if (!Array.isArray(jobs) || !jobs.length) return;
  for (const job of jobs) mergeJob(job, fillOnly);
  trimJobs();
  emit('jobs', jobs.map((j) => j.job_id));
}

export function addSample(sample) {
  if (!sample || !Number.isFinite(sample.t)) return;
  state.stats.push(sample);
  trimStats();
  emit('stats');
}

/** Forget everything (on a 401: nothing of the cluster may stay on screen). */
export function clearState() {
  state.hives = [];
  state.jobs = new Map();
  state.stats = [];
  emit('hives'); emit('jobs'); emit('stats');
}
