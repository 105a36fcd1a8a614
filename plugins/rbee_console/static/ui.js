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

/**
 * Make `from` look like `to` while keeping `from`'s elements: a page redrawn from fresh
 * data keeps focus, hover and the element references a test or a click holds.
 * Returns the node now in the document.
 */
export function morph(from, to) {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
    from.replaceWith(to);
    return to;
  }
  if (from.nodeType !== Node.ELEMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return from;
  }
  for (const { name } of [...from.attributes]) {
    if (name !== 'style' && !to.hasAttribute(name)) from.removeAttribute(name);
  }
  for (const { name, value } of [...to.attributes]) {
    // Styles go through the CSSOM: the CSP refuses style attributes set as text.
    if (name !== 'style' && from.getAttribute(name) !== value) from.setAttribute(name, value);
  }
  for (const prop of [...from.style]) if (!to.style.getPropertyValue(prop)) from.style.removeProperty(prop);
  for (const prop of [...to.style]) {
    const v = to.style.getPropertyValue(prop);
    if (from.style.getPropertyValue(prop) !== v) from.style.setProperty(prop, v);
  }
  // Form state lives in properties, not attributes.
  if ('disabled' in from && from.disabled !== to.disabled) from.disabled = to.disabled;
  const a = [...from.childNodes];
  const b = [...to.childNodes];
  b.forEach((child, i) => { if (i < a.length) morph(a[i], child); else from.append(child); });
  for (const extra of a.slice(b.length)) extra.remove();
  return from;
}

/**
 * Put `items` (fresh elements) in `parent`, in this order, reusing the child with the same
 * key(element) where there is one: a row keeps its element for as long as its job exists.
 */
export function morphList(parent, items, key) {
  const old = new Map();
  for (const child of parent.children) {
    const k = key(child);
    if (k != null) old.set(k, child);
  }
  let prev = null;
  for (const item of items) {
    const k = key(item);
    const existing = k != null ? old.get(k) : undefined;
    let node = item;
    if (existing) { old.delete(k); node = morph(existing, item); }
    const slot = prev ? prev.nextSibling : parent.firstChild;
    if (slot !== node) parent.insertBefore(node, slot);
    prev = node;
  }
  // Whatever follows the last item is gone from the data.
  for (let next = prev ? prev.nextSibling : parent.firstChild; next; next = prev ? prev.nextSibling : parent.firstChild) {
    next.remove();
  }
}
