// The call card (Alt+1): what the pop (screenpop.messages.Pop) says about the current call, and the
// ringing notice before it. Reads only fields published in /api/ws/schema.json.

import { $, el, showText } from './dom.js';
import { renderCallControls } from './consult_panel.js';
import { openAnswer } from './faq_panel.js';
import { consentScriptFor, preselectDepartment } from './callback_panel.js';
import { CATEGORY_LABELS, OUTCOME_TEXT, categoryLabel, faqCredit, state } from './state.js';

export function showRinging(msg) {
  const r = $('ringing');
  const reference = msg.reference ? ` ／ 受付番号 ${msg.reference}` : '';
  const waited = msg.waited_seconds == null ? '' : `（待ち ${msg.waited_seconds}秒）`;
  r.textContent = `着信中: ${msg.category_label}${waited}${reference}`;
  r.hidden = false;
  r.dataset.callId = msg.call_id;
}

export function clearRinging(callId) {
  const r = $('ringing');
  if (callId === undefined || r.dataset.callId === callId) r.hidden = true;
}

export function renderCall() {
  const call = state.call;
  $('call-empty').hidden = !!call;
  $('call-card').hidden = !call;
  const closed = !!call && call.office_open === false;
  $('callback-area').hidden = !closed;
  $('callback-unavailable').hidden = closed;
  $('transfer-btn').disabled = !call || call.office_open === false;
  $('transfer-note').textContent = !call ? '通話中のみ転送できます。'
    : call.office_open === false ? '閉庁中のため転送できません（折り返し依頼を受け付けてください）。' : '';
  renderCallControls();
  if (!call) return;
  const script = state.config && state.config.consent_script;
  $('consent-script').textContent = script ? consentScriptFor(script, call.office_reason) : '';
  if (closed) preselectDepartment(call.category);
  $('pop-number').textContent = call.caller_withheld || !call.caller_number ? '非通知' : call.caller_number_display || call.caller_number;
  $('call-card').dataset.callId = call.call_id;  // for machines; people read the 受付番号
  $('pop-reference').textContent = call.reference || '（未採番）';
  $('pop-category').textContent = categoryLabel(call);
  $('pop-wait').textContent = call.waited_seconds == null ? '-' : `${Math.round(call.waited_seconds)}秒`;
  $('pop-office').textContent = call.office_open ? '開庁中（転送できます）'
    : `閉庁中${call.office_reason_text ? `（${call.office_reason_text}）` : ''}：折り返し依頼を受け付けられます`;
  const held = call.live !== false && (call.consult ? '（相談中・保留中）' : call.onHold ? '（保留中）' : '');
  $('pop-state').textContent = `${call.status}${held || ''}`;
  const history = $('pop-history');
  history.replaceChildren(...(call.history || []).map((h) => el('li', {},
    `${h.date} ${h.category_label || CATEGORY_LABELS[h.category] || '未選択'} ${OUTCOME_TEXT[h.outcome] || h.outcome || '（結果未記録）'}`)));
  if (!history.children.length) history.append(el('li', { class: 'muted' }, 'ありません'));
  const callbacks = $('pop-callbacks');
  callbacks.replaceChildren(...(call.open_callbacks || []).map((c) => el('li', {},
    `#${c.id} ${c.status_text} ${c.department_name}（引継ぎ日 ${c.handover_date}）`)));
  if (!callbacks.children.length) callbacks.append(el('li', { class: 'muted' }, 'ありません'));
  const faq = $('pop-faq');
  faq.replaceChildren(...(call.faq_suggestions || []).map((f) => {
    const link = el('a', { href: '#', 'data-id': f.id }, f.question);
    link.addEventListener('click', (e) => { e.preventDefault(); openAnswer(f.id); });
    return el('li', {}, link);
  }));
  if (!faq.children.length) faq.append(el('li', { class: 'muted' }, 'ありません'));
  const credit = call.faq_credit || (call.faq_suggestions && call.faq_suggestions.length ? faqCredit() : '');
  showText('pop-credit', credit);
}
