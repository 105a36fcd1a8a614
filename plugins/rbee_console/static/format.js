// Human-readable numbers, the same way the CLI writes them (rbee_core/units.py).

/** 98362432 -> "98.4 MB": decimal units, as download tools and `rbee-keeper` show sizes. */
export function bytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  n = Number(n);
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (Math.abs(n) < 1000 || unit === 'GB') {
      return unit === 'B' ? `${n.toFixed(0)} B` : `${n.toFixed(1)} ${unit}`;
    }
    n /= 1000;
  }
  return '—';
}

/** Seconds -> "0.42 s", "3.2 s", "2 min 5 s", "1 h 3 min". */
export function duration(s) {
  if (s == null || !Number.isFinite(Number(s))) return '—';
  s = Number(s);
  if (s < 0) s = 0;
  if (s < 1) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = Math.floor(s % 60);
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Unix seconds -> "4 s ago", "3 min ago", "2 h ago", or a date for older times. */
export function ago(unix, now = Date.now() / 1000) {
  if (unix == null || !Number.isFinite(Number(unix))) return '—';
  const d = Math.max(0, Math.round(now - Number(unix)));
  if (d < 60) return `${d} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return clock(unix);
}

/** Unix seconds -> local date and time, "2026-12-01 19:03:12". */
export function clock(unix) {
  if (unix == null || !Number.isFinite(Number(unix))) return '—';
  const d = new Date(Number(unix) * 1000);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds -> "19:03:12" (chart axes). */
export function timeOfDay(unix) {
  const d = new Date(Number(unix) * 1000);
  const pad = (x) => String(x).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A short one-line preview of a long text. */
export function preview(text, max = 80) {
  if (text == null) return '';
  const line = String(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Numbers for captions: 12.345 -> "12.3", null -> "—". */
export function num(x, digits = 1) {
  if (x == null || !Number.isFinite(Number(x))) return '—';
  return Number(x).toFixed(digits);
}

/**
 * What people call a model: its catalog name (smollm2-135m) as is; for a reference, the
 * file or folder it names (https://host/x/SmolLM2-135M-Instruct.Q4_1.gguf#sha256=...
 * -> SmolLM2-135M-Instruct.Q4_1), which is what the table shows and data-model holds.
 */
export function shortName(name) {
  const text = String(name ?? '');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (!scheme) return text;
  let rest = text.slice(scheme.length + 1);
  if (scheme === 'hf') {
    const [repo, file] = rest.split(':');
    return file ? file.replace(/\.gguf$/i, '') : repo;
  }
  rest = rest.split('#')[0].split('?')[0].replace(/\/+$/, '');
  const last = rest.split('/').filter(Boolean).at(-1) || text;
  let base = last;
  try { base = decodeURIComponent(last); } catch { /* keep it as written */ }
  return base.replace(/\.(gguf|safetensors)$/i, '');
}
