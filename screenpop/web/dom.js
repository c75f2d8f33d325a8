// Small DOM helpers shared by the operator page's panels. Text is always set as text, never as HTML.

export { $ } from './api.js';
import { $ } from './api.js';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showText(id, text) {
  const node = $(id);
  node.textContent = text || '';
  node.hidden = !text;
}

export function highlighted(text, spans) {
  // [start, end) spans over the text; built as text nodes and <mark>, never as HTML.
  const frag = document.createDocumentFragment();
  const chars = Array.from(text);  // code points, as the server counts them
  let pos = 0;
  for (const [start, end] of (spans || []).slice().sort((a, b) => a[0] - b[0])) {
    if (start < pos || end <= start) continue;
    frag.append(chars.slice(pos, start).join(''));
    frag.append(el('mark', {}, chars.slice(start, end).join('')));
    pos = end;
  }
  frag.append(chars.slice(pos).join(''));
  return frag;
}

export function hhmm(iso) {
  const d = iso ? new Date(iso) : new Date();
  return d.toLocaleTimeString('ja-JP', { hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Tokyo' });
}

export function globalError(message) { showText('global-error', message); }
