// Today's calls (Alt+5): the server's rows (times on the server's clock; no personal data) merged
// with what this page recorded (outcomes).

import { api } from './api.js';
import { $, el, hhmm } from './dom.js';
import { state } from './state.js';

export async function loadToday() {
  try {
    const data = await api('GET', '/api/operator/calls');
    for (const row of data.items) {
      const mine = state.today.get(row.call_id);
      state.today.set(row.call_id, mine && mine.outcome ? { ...row, outcome: mine.outcome } : row);
    }
  } catch (err) { /* keep what is shown */ }
  renderToday();
}

export function upsertToday(callId, patch) {
  const row = state.today.get(callId) || { call_id: callId, at: new Date().toISOString(), category_label: '', state: '' };
  Object.assign(row, patch);
  state.today.set(callId, row);
  renderToday();
}

function renderToday() {
  const rows = Array.from(state.today.values()).sort((a, b) => (a.at < b.at ? 1 : -1));
  $('today-rows').replaceChildren(...rows.map((r) => el('tr', {},
    el('td', {}, hhmm(r.at)), el('td', {}, r.reference || r.call_id), el('td', {}, r.category_label || ''),
    el('td', {}, [r.state, r.outcome].filter(Boolean).join(' / ')))));
}
