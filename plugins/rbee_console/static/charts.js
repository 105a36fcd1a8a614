// Three small line charts of the feed's load samples over the last 10 minutes, drawn with
// the canvas 2D API (no library): tokens/s, running and queued jobs, time to first token.

import { state, subscribe } from './state.js';
import { num, timeOfDay, duration } from './format.js';

const WINDOW = 600; // seconds shown
let visible = false;
let pending = false;

const CHARTS = [
  {
    id: 'tps', unit: 'tokens/s',
    series: [{ key: 'tokens_per_s', color: '--accent', label: 'tokens/s' }],
    caption: (s) => `${num(s?.tokens_per_s)} tokens/s`,
  },
  {
    id: 'jobs', unit: 'jobs', integer: true,
    series: [
      { key: 'running', color: '--accent', label: 'running' },
      { key: 'queued', color: '--accent-2', label: 'queued' },
    ],
    caption: (s) => `${s?.running ?? '—'} running · ${s?.queued ?? '—'} queued`,
  },
  {
    id: 'ttft', unit: 's', points: true,
    series: [{ key: 'ttft', color: '--accent-3', label: 'ttft' }],
    caption: (s) => {
      // The latest sample may have had no first token: show the latest one there was.
      const last = [...state.stats].reverse().find((x) => x.ttft != null);
      return last ? `${duration(last.ttft)} (latest)` : 'no first token yet';
    },
  },
];

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/**
 * A "nice" scale for the y axis: its top (1, 2, 5, 10, 20, 50, ...) and the step between
 * grid lines, so the labels read 0, 0.5, 1, 1.5, 2 rather than 0, 1.3, 2.5, 3.8, 5.
 */
function niceScale(x, integer) {
  if (!(x > 0)) x = integer ? 4 : 1;
  if (integer) x = Math.max(x, 4);
  const p = 10 ** Math.floor(Math.log10(x));
  for (const [m, lines] of [[1, 4], [2, 4], [5, 5], [10, 5]]) {
    if (x <= m * p * (1 + 1e-9)) {
      const top = m * p;
      let step = top / lines;
      if (integer && !Number.isInteger(step)) step = Math.ceil(step);
      return { top: integer ? Math.ceil(top / step) * step : top, step };
    }
  }
  return { top: 10 * p, step: 2 * p };
}

/** The highest value of the chart's series over the window (null when none). */
function peak(chart, shown) {
  let max = null;
  for (const s of shown) for (const ser of chart.series) {
    const v = Number(s[ser.key]);
    if (s[ser.key] != null && Number.isFinite(v)) max = Math.max(max ?? v, v);
  }
  return max;
}

function windowed() {
  const samples = state.stats;
  const end = samples.length ? samples.at(-1).t : Date.now() / 1000;
  return { start: end - WINDOW, shown: samples.filter((s) => s.t >= end - WINDOW) };
}

/** Caption and data-max (the peak, for tests and tooltips), cheap: kept current always. */
function describe(chart, shown) {
  const canvas = document.getElementById(`chart-${chart.id}`);
  const top = peak(chart, shown);
  if (canvas) {
    canvas.dataset.max = top == null ? '0' : String(top);
    canvas.title = top == null ? 'no data yet' : `peak ${num(top, 2)} ${chart.unit}`;
  }
  const caption = document.getElementById(`chart-${chart.id}-now`);
  if (caption) caption.textContent = chart.caption(state.stats.at(-1));
}

function draw(chart) {
  const canvas = document.getElementById(`chart-${chart.id}`);
  if (!canvas) return;
  const { start, shown } = windowed();
  const samples = state.stats;
  describe(chart, shown);
  const rect = canvas.getBoundingClientRect();
  if (rect.width === 0 || rect.height === 0) return; // hidden: drawn when shown
  // Draw at the screen's pixel density, so lines stay sharp on HiDPI screens.
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(rect.width * dpr);
  const h = Math.round(rect.height * dpr);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = rect.width;
  const H = rect.height;
  ctx.clearRect(0, 0, W, H);

  const fg = cssVar('--muted', '#888');
  const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
  const pad = { l: 44, r: 10, t: 10, b: 22 };
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;

  const { top: max, step } = niceScale(peak(chart, shown) ?? 0, chart.integer);
  const x = (t) => pad.l + ((t - start) / WINDOW) * pw;
  const y = (v) => pad.t + ph - (v / max) * ph;

  // Axes: a grid line per step with its value; time as minutes before the newest sample.
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = fg;
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  // As many decimals as the step has (0.25 -> 2), so no two labels read the same.
  const digits = chart.integer ? 0 : Math.min(3, (String(Number(step.toPrecision(6))).split('.')[1] || '').length);
  for (let v = 0; v <= max + step / 2; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(W - pad.r, yy); ctx.stroke();
    ctx.fillText(v.toFixed(digits), pad.l - 6, yy);
  }
  ctx.textBaseline = 'top';
  for (let i = 0; i <= 5; i++) {
    const t = start + (WINDOW / 5) * i;
    ctx.textAlign = i === 0 ? 'left' : i === 5 ? 'right' : 'center';
    const label = i === 5 ? 'now' : `−${Math.round((WINDOW - (WINDOW / 5) * i) / 60)} min`;
    ctx.fillText(label, x(t), H - pad.b + 5);
  }
  if (samples.length) canvas.setAttribute('aria-description', `until ${timeOfDay(samples.at(-1).t)}`);

  // The series: lines (gaps where a value is missing), or points for ttft.
  for (const ser of chart.series) {
    ctx.strokeStyle = ctx.fillStyle = cssVar(ser.color, '#4a90e2');
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    let open = false;
    ctx.beginPath();
    for (const s of shown) {
      const raw = s[ser.key];
      if (raw == null || !Number.isFinite(Number(raw))) { open = false; continue; }
      const px = x(s.t);
      const py = y(Math.min(Number(raw), max));
      if (chart.points) {
        ctx.moveTo(px + 3, py);
        ctx.arc(px, py, 3, 0, Math.PI * 2);
      } else if (open) ctx.lineTo(px, py);
      else { ctx.moveTo(px, py); open = true; }
    }
    if (chart.points) ctx.fill(); else ctx.stroke();
  }
  if (!shown.length) {
    ctx.fillStyle = fg;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('no samples yet', pad.l + pw / 2, pad.t + ph / 2);
  }
}

export function drawCharts() {
  pending = false;
  for (const c of CHARTS) draw(c);
}

function schedule() {
  if (!visible || pending) return;
  pending = true;
  requestAnimationFrame(drawCharts);
}

/** The charts page is shown or hidden: draw only while someone can see it. */
export function setChartsVisible(on) {
  visible = on;
  if (on) schedule();
}

export function initCharts() {
  subscribe('stats', () => {
    schedule();
    // Captions are cheap and tell the current value even before the page is opened.
    if (!visible) {
      const { shown } = windowed();
      for (const c of CHARTS) describe(c, shown);
    }
  });
  const ro = new ResizeObserver(schedule);
  for (const c of CHARTS) {
    const canvas = document.getElementById(`chart-${c.id}`);
    if (canvas) ro.observe(canvas);
  }
  // A new devicePixelRatio (zoom, another screen) needs a redraw at the new density.
  window.addEventListener('resize', schedule);
  matchMedia('(prefers-color-scheme: dark)').addEventListener?.('change', schedule);
}
