// The current call's life on the page: a pop starts it (every panel reset for the new call), call
// updates move it on, a reload or resync restores it from the server. A pop never takes the focus
// and never clears a form being filled in: while one is, the new call waits and is announced in
// the aria-live notice (shown once the outcome is recorded, or on request).

import { api } from './api.js';
import { $, globalError } from './dom.js';
import { callbackInProgress, resetCallback } from './callback_panel.js';
import { resetFaqForCall } from './faq_panel.js';
import { markOutcome, outcomeInProgress, resetOutcome } from './outcome_panel.js';
import { clearRinging, renderCall } from './pop_panel.js';
import { bindCallControls, endCallControls, initCallControls, onControlUpdate, setDepartmentNamer } from './consult_panel.js';
import { renderStatus } from './presence_panel.js';
import { categoryLabel, state } from './state.js';
import { loadToday, upsertToday } from './today_panel.js';

/** A transfer's dial string (205@departments, Local/205@…, PJSIP/205) as the department's name; an
 * extension no department has is shown as 内線205; nothing else of the dial string reaches the screen. */
export function transferTargetName(target) {
  if (!target) return '';
  const extension = String(target).replace(/^[A-Za-z]+\//, '').split('@')[0];
  const departments = (state.config && state.config.departments) || [];
  const found = departments.find((d) => d.transfer && d.transfer === extension);
  if (found) return found.name;
  return /^\d+$/.test(extension) ? `内線${extension}` : '';
}

const CALL_STATE_TEXT = { talking: '通話中', transferred: '転送済み', ended: '通話終了（結果を記録してください）' };

function inProgress() {
  return !!state.call && (outcomeInProgress() || callbackInProgress());
}

function announce(text, pending) {
  $('call-notice-text').textContent = text;
  $('call-notice').hidden = !text;
  $('show-pending').hidden = !pending;
}

function describe(pop) {
  const reference = pop.reference ? `受付番号 ${pop.reference}、` : '';
  return `${reference}${categoryLabel(pop)}、待ち ${Math.round(pop.waited_seconds || 0)}秒`;
}

function showCall(pop, status) {
  // a waiting pop knows whether its call is still up (pop.live); others go by the status given
  const live = pop.live === undefined ? status === '通話中' : pop.live;
  if (pop.live === false) status = CALL_STATE_TEXT.ended;
  state.call = { ...pop, status, live, consent: null, callback: null };
  initCallControls(state.call, pop);
  state.pendingPop = null;
  resetFaqForCall();
  resetOutcome();
  resetCallback();
  renderCall();
  renderStatus();
}

export function onPop(pop) {
  clearRinging();
  upsertToday(pop.call_id, { reference: pop.reference, category_label: categoryLabel(pop), state: '通話中' });
  loadToday();
  if (inProgress()) {
    state.pendingPop = { ...pop, live: true };  // the operator is on this call already
    renderStatus();
    announce(`新しい通話が着信しました（${describe(pop)}）。入力中の内容はそのままです。結果を記録すると表示します。`, true);
  } else {
    showCall(pop, '通話中');
    announce(`新しい通話: ${describe(pop)}`, false);
  }
  // The server created the contact when this operator answered (records, on operator_connected).
}

/** The waiting pop now (after the outcome is recorded, or when the operator asks). */
export function showPendingCall() {
  const pop = state.pendingPop;
  if (!pop) return;
  showCall(pop, '通話中');
  announce(`新しい通話: ${describe(pop)}`, false);
}

export async function restoreCurrent() {
  // After a reload (or a resync snapshot): the latest pop, composed again by the server.
  try {
    const data = await api('GET', '/api/operator/current');
    const pop = data && data.pop;
    if (!pop || (state.call && state.call.call_id === pop.call_id)) return;
    if (inProgress()) {
      state.pendingPop = pop;
      announce(`別の通話があります（${describe(pop)}）。入力中の内容はそのままです。`, true);
      return;
    }
    showCall(pop, CALL_STATE_TEXT[pop.call_state] || '');
    if (pop.call_state !== 'talking') state.call.live = false;
    renderStatus();
  } catch (err) { /* nothing to restore */ }
}

export function onCallUpdate(msg) {
  if (msg.detail && msg.detail.ringing) {
    clearRinging(msg.call_id);
    return;
  }
  if (msg.event === 'hold' || msg.event === 'consult') {
    // only the call on the screen has hold/consult buttons; a waiting pop gets its state on display
    if (state.call && state.call.call_id === msg.call_id && state.call.live !== false) {
      onControlUpdate(msg);
      renderCall();
    }
    return;
  }
  if (state.pendingPop && state.pendingPop.call_id === msg.call_id) {
    state.pendingPop.live = msg.event === 'answered';
    upsertToday(msg.call_id, { state: msg.event === 'transferred' ? '転送済み' : '終了' });
    renderStatus();
    return;
  }
  if (!state.call || state.call.call_id !== msg.call_id) {
    upsertToday(msg.call_id, { state: msg.event === 'transferred' ? '転送済み' : '終了' });
    return;
  }
  if (msg.event === 'transferred') {
    const where = transferTargetName(msg.detail && msg.detail.target);
    state.call.status = where ? `転送済み（${where}）` : '転送済み';
    state.call.live = false;
    endCallControls(where ? `${where}へ転送しました` : '転送しました');
    markOutcome('transferred');
    upsertToday(msg.call_id, { state: '転送済み' });
  } else if (msg.event === 'hangup') {
    state.call.status = '通話終了（結果を記録してください）';
    state.call.live = false;
    endCallControls('');
    upsertToday(msg.call_id, { state: '終了' });
  } else if (msg.event === 'answered') {
    state.call.status = '通話中';
    state.call.live = true;
  }
  renderCall();
  renderStatus();
}

export function bindCall() {
  $('show-pending').addEventListener('click', showPendingCall);
  setDepartmentNamer((extension) => transferTargetName(extension) || `内線${extension}`);
  bindCallControls(renderCall);
}
