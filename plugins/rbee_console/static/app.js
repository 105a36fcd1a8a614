// Boot, hash routing and the lock: a 401 anywhere stops every stream, wipes what is shown
// and asks for the API key; a key submitted starts everything again.

import { getKey, setKey, clearKey, lockSession, unlockSession, setUnauthorizedHandler } from './api.js';
import { startFeed, stopFeed, onFeedStatus } from './feed.js';
import { clearState } from './state.js';
import { initCluster } from './cluster.js';
import { initJobs, loadJobs, openJob, closeJob } from './jobs.js';
import { initModels, loadModels, clearModels } from './models.js';
import { initPlayground, resetPlayground } from './playground.js';
import { initCharts, setChartsVisible } from './charts.js';

const PAGES = ['cluster', 'jobs', 'job', 'models', 'playground', 'charts'];
let locked = false;
// The job list and the models load once the feed has answered: with a key missing, only
// one request is refused (one 401 in the browser's log, not three).
let needLoad = true;

function setConn(text) {
  const node = document.getElementById('conn-state');
  node.textContent = text;
  node.dataset.state = text;
}

// ---------------------------------------------------------------------------------------
// Routing: #/cluster (default), #/jobs, #/jobs/ID, #/models, #/playground, #/charts

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  let page = parts[0] || 'cluster';
  let jobId = null;
  if (page === 'jobs' && parts.length > 1 && parts[1]) {
    page = 'job';
    try { jobId = decodeURIComponent(parts.slice(1).join('/')); } catch { jobId = parts.slice(1).join('/'); }
  }
  if (!PAGES.includes(page) || page === 'job' && !jobId) page = 'cluster';
  for (const p of PAGES) document.getElementById(`page-${p}`).hidden = p !== page;
  const navPage = page === 'job' ? 'jobs' : page;
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === navPage) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  setChartsVisible(page === 'charts');
  if (page === 'job') {
    if (!locked) openJob(jobId);
  } else {
    closeJob();
  }
  if (page === 'models' && !locked && !needLoad) loadModels();
}

// ---------------------------------------------------------------------------------------
// The lock

function lock(message) {
  if (locked) return;
  locked = true;
  const hadKey = Boolean(getKey());
  clearKey(); // a refused key is no use on the next load either
  forget();
  document.body.classList.add('locked');
  document.getElementById('main').hidden = true;
  document.getElementById('logout').hidden = true;
  const form = document.getElementById('login');
  form.hidden = false;
  const error = document.getElementById('login-error');
  error.textContent = hadKey ? `That key was refused: ${message}` : 'This queen needs an API key.';
  error.classList.toggle('error', hadKey);
  setConn('locked');
  document.getElementById('api-key').focus();
}

/** Load everything, as on a fresh page: the feed, the job list, the models. */
function start() {
  locked = false;
  unlockSession();
  document.body.classList.remove('locked');
  document.getElementById('login').hidden = true;
  document.getElementById('main').hidden = false;
  document.getElementById('logout').hidden = !getKey();
  needLoad = true;
  setConn('reconnecting');
  startFeed();
  route();
}

function onLogin(e) {
  e.preventDefault();
  const input = document.getElementById('api-key');
  const key = input.value.trim();
  if (!key) {
    document.getElementById('login-error').textContent = 'Enter the API key the queen was started with.';
    return;
  }
  setKey(key);
  input.value = '';
  document.getElementById('login-error').textContent = '';
  start();
}

function onLogout() {
  clearKey();
  // Start again without a key: a queen that needs one answers 401 and the form appears.
  forget();
  start();
}

/** End every request and stream, and drop everything shown: nothing outlives a key. */
function forget() {
  lockSession();
  stopFeed(true);
  closeJob();
  clearState();
  clearModels();
  resetPlayground();
}

// ---------------------------------------------------------------------------------------

function boot() {
  setUnauthorizedHandler(lock);
  onFeedStatus((s) => {
    if (locked) return;
    setConn(s);
    // The first answer of the feed (or its first failure, to show why): load the rest.
    if (needLoad) {
      needLoad = false;
      loadJobs();
      loadModels();
    }
  });
  initCluster();
  initJobs();
  initModels();
  initPlayground();
  initCharts();
  document.getElementById('login').addEventListener('submit', onLogin);
  document.getElementById('logout').addEventListener('click', onLogout);
  window.addEventListener('hashchange', route);
  start();
}

boot();
