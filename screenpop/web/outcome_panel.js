// Outcome and transfer (Alt+3): record how the call ended; blind transfer to a department while
// the ward office is open.

import { api } from './api.js';
import { $, el, showText } from './dom.js';
import { renderCall } from './pop_panel.js';
import { OUTCOME_TEXT, state } from './state.js';
import { upsertToday } from './today_panel.js';

let onRecorded = () => {};
/** What follows a recorded outcome (the page ends 後処理 and shows a waiting pop). */
export function setOutcomeRecordedHandler(fn) { onRecorded = fn; }

/** An outcome picked (or a gap note typed) and not yet recorded. */
export function outcomeInProgress() {
  const picked = document.querySelector('input[name=outcome]:checked');
  return !!(picked || $('gap-note').value.trim()) && $('outcome-done').hidden;
}

export function fillTransferTargets(departments) {
  const tr = $('transfer-dept');
  tr.replaceChildren();
  for (const d of departments) {
    if (d.transfer) tr.append(el('option', { value: d.code }, `${d.name}（${d.transfer}）`));
  }
}

export function resetOutcome() {
  $('outcome-form').reset();
  $('gap-row').hidden = true;
  showText('outcome-error', ''); showText('outcome-done', '');
  showText('transfer-error', '');
}

export function markOutcome(value) {
  const radio = document.querySelector(`input[name=outcome][value=${value}]`);
  if (radio) radio.checked = true;
}

async function onOutcomeSubmit(event) {
  event.preventDefault();
  showText('outcome-done', '');
  if (!state.call) { showText('outcome-error', '対応中の通話がありません'); return; }
  const picked = document.querySelector('input[name=outcome]:checked');
  if (!picked) { showText('outcome-error', '対応結果を選んでください'); document.querySelector('input[name=outcome]').focus(); return; }
  const body = { outcome: picked.value, faq_entries: Array.from(state.faqUsed) };
  if (picked.value === 'unanswered' && $('gap-note').value.trim()) body.gap_note = $('gap-note').value.trim();
  if (picked.value === 'transferred') body.transfer_department = state.call.transferredTo || $('transfer-dept').value || null;
  try {
    await api('PATCH', `/api/records/contacts/${encodeURIComponent(state.call.call_id)}`, body);
    showText('outcome-error', '');
    showText('outcome-done', `記録しました: ${OUTCOME_TEXT[picked.value]}`);
    upsertToday(state.call.call_id, { outcome: OUTCOME_TEXT[picked.value] });
  } catch (err) {
    showText('outcome-error', err.message);
    return;
  }
  onRecorded();
}

async function onTransferSubmit(event) {
  event.preventDefault();
  if (!state.call) { showText('transfer-error', '対応中の通話がありません'); return; }
  const department = $('transfer-dept').value;
  if (!department) { showText('transfer-error', '転送先の課を選んでください'); return; }
  // Shown before the request: the "transferred" update may come over the websocket before the
  // HTTP answer does, and must not be overwritten by it.
  const call = state.call;
  const before = call.status;
  call.status = '転送しています…';
  renderCall();
  try {
    await api('POST', `/api/operator/calls/${encodeURIComponent(call.call_id)}/transfer`, { department });
    showText('transfer-error', '');
    call.transferredTo = department;
    markOutcome('transferred');
  } catch (err) {
    if (call.status === '転送しています…') call.status = before;
    showText('transfer-error', err.message);
  }
  if (state.call === call) renderCall();
}

export function bindOutcome() {
  $('outcome-form').addEventListener('submit', onOutcomeSubmit);
  $('outcome-form').addEventListener('change', () => {
    const picked = document.querySelector('input[name=outcome]:checked');
    $('gap-row').hidden = !(picked && picked.value === 'unanswered');
  });
  $('transfer-form').addEventListener('submit', onTransferSubmit);
}
