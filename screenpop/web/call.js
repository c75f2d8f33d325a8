// The current call's life on the page: a pop starts it (every panel reset), call updates move it
// on, a reload or resync restores it from the server.

import { api } from './api.js';
import { globalError } from './dom.js';
import { resetFaqUse } from './faq_panel.js';
import { resetCallback } from './callback_panel.js';
import { markOutcome, resetOutcome } from './outcome_panel.js';
import { clearRinging, renderCall } from './pop_panel.js';
import { categoryLabel, state } from './state.js';
import { loadToday, upsertToday } from './today_panel.js';

const CALL_STATE_TEXT = { talking: '通話中', transferred: '転送済み', ended: '通話終了（結果を記録してください）' };

function startCall(pop, status, contactSaved) {
  state.call = { ...pop, status, contactSaved, consent: null, callback: null };
  resetFaqUse();
  resetOutcome();
  resetCallback();
  renderCall();
}

export async function onPop(pop) {
  clearRinging();
  startCall(pop, '通話中', false);
  upsertToday(pop.call_id, { category_label: categoryLabel(pop), state: '通話中' });
  loadToday();
  document.getElementById('call-title').focus();
  try {
    await api('POST', '/api/records/contacts', {
      call_id: pop.call_id,
      ivr_category: pop.category || null,
      caller_number: pop.caller_number || null,
      faq_entries: [],
    });
    state.call.contactSaved = true;
  } catch (err) {
    if (err.status === 409) state.call.contactSaved = true; // already recorded (e.g. after a reload)
    else globalError(`通話の記録を作成できませんでした: ${err.message}`);
  }
}

export async function restoreCurrent() {
  // After a reload (or a resync snapshot): the latest pop, composed again by the server.
  try {
    const data = await api('GET', '/api/operator/current');
    const pop = data && data.pop;
    if (!pop || (state.call && state.call.call_id === pop.call_id)) return;
    startCall(pop, CALL_STATE_TEXT[pop.call_state] || '', true);
  } catch (err) { /* nothing to restore */ }
}

export function onCallUpdate(msg) {
  if (msg.detail && msg.detail.ringing) {
    clearRinging(msg.call_id);
    return;
  }
  if (!state.call || state.call.call_id !== msg.call_id) {
    upsertToday(msg.call_id, { state: msg.event === 'transferred' ? '転送済み' : '終了' });
    return;
  }
  if (msg.event === 'transferred') {
    state.call.status = `転送済み（${msg.detail && msg.detail.target ? msg.detail.target : ''}）`;
    markOutcome('transferred');
    upsertToday(msg.call_id, { state: '転送済み' });
  } else if (msg.event === 'hangup') {
    state.call.status = '通話終了（結果を記録してください）';
    upsertToday(msg.call_id, { state: '終了' });
  } else if (msg.event === 'answered') {
    state.call.status = '通話中';
  }
  renderCall();
}

