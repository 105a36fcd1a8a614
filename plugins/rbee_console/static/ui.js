// Small DOM helpers shared by the pages. Text goes in with textContent only, never innerHTML.

import { isQuiet } from './api.js';

/** el('td', {class: 'x', dataset: {job: id}}, 'text', child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Show a message in the toast area for a while (errors stay longer). */
export function toast(message, kind = 'error') {
  const box = document.getElementById('toast');
  if (!box) return;
  const item = el('div', { class: `toast-item ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  const close = el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  close.addEventListener('click', () => item.remove());
  item.append(close);
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 4000);
}

/**
 * Report a failed request: into `target` (an element, given the class "error") when there
 * is one, else as a toast. Aborts and 401s are not errors to show: the page locks itself.
 */
export function report(err, target = null, prefix = '') {
  if (isQuiet(err)) return;
  const message = `${prefix}${err?.message || err}`;
  if (target) {
    target.textContent = message;
    target.classList.add('error');
    target.hidden = false;
  } else {
    toast(message);
  }
  console.warn(message, err);
}
