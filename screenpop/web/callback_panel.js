// Consent and callback request (Alt+4): only for calls while the ward office is closed. The consent
// script is read out, the answer recorded; with consent, the callback form (personal data goes in
// the request body only).

import { api } from './api.js';
import { $, el, showText } from './dom.js';
import { markOutcome } from './outcome_panel.js';
import { state } from './state.js';
import { upsertToday } from './today_panel.js';

const FIELD_ALIASES = { phone: 'phone', daytime_phone: 'phone' };

export function fillCallbackDepartments(departments) {
  const cb = $('cb-department');
  cb.replaceChildren(el('option', { value: '' }, '選択してください'));
  for (const d of departments) cb.append(el('option', { value: d.code }, d.name));
}

/** Something typed into the callback form and not registered yet. */
export function callbackInProgress() {
  if (state.call && state.call.callback) return false;
  const fields = document.querySelectorAll('#callback-form input:not([type=checkbox]), #callback-form textarea');
  return Array.from(fields).some((f) => f.value.trim()) || !!$('cb-department').value;
}

/** A fresh key for one 保存 of the form: sent again when the save is repeated, so a save whose
 * answer was lost (the cti node died after its commit) is not recorded twice. */
function newRequestKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function resetCallback() {
  state.callbackKey = null;
  $('callback-form').reset();
  $('callback-form').hidden = true;
  $('callback-save').disabled = false;
  for (const div of document.querySelectorAll('.reveal')) div.hidden = true;
  clearFieldErrors();
  showText('callback-error', ''); showText('callback-done', '');
  $('consent-state').textContent = '';
  showText('consent-error', '');
  $('consent-yes').disabled = false; $('consent-no').disabled = false;
}

async function recordConsent(answer) {
  if (!state.call) return;
  const script = state.config && state.config.consent_script;
  try {
    await api('POST', `/api/records/contacts/${encodeURIComponent(state.call.call_id)}/consent`, {
      answer, script_id: script ? script.id : null, script_version: script ? script.version : null,
    });
    showText('consent-error', '');
    state.call.consent = answer;
    $('consent-state').textContent = answer === 'yes' ? '同意を記録しました' : '「同意なし」を記録しました（個人情報は記録しません）';
    $('consent-yes').disabled = true; $('consent-no').disabled = true;
    if (answer === 'yes') {
      $('callback-form').hidden = false;
      $('cb-name').focus();
    } else {
      markOutcome('declined');
    }
  } catch (err) {
    showText('consent-error', err.message);
  }
}

function clearFieldErrors() {
  for (const span of document.querySelectorAll('#callback-form .field-error')) span.textContent = '';
  for (const input of document.querySelectorAll('#callback-form [aria-invalid]')) input.removeAttribute('aria-invalid');
}

function fieldInput(name) { return document.querySelector(`#callback-form [name="${name}"]`); }

function showFieldError(field, message) {
  const name = FIELD_ALIASES[field] || field;
  const span = document.querySelector(`#callback-form .field-error[data-for="${name}"]`);
  const input = fieldInput(name);
  if (!span || !input) return null;
  const reveal = input.closest('.reveal');
  if (reveal) reveal.hidden = false;
  span.textContent = message;
  span.id = span.id || `err-${name}`;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', span.id);
  return input;
}

/** Every field error at once: each field marked with its message, one summary announced once (the
 * role=alert paragraph), the focus on the first bad field. Errors naming no field go in the summary. */
function showFieldErrors(errors) {
  let first = null;
  const loose = [];
  for (const e of errors) {
    const input = showFieldError(e.field, e.message);
    if (input) first = first || input; else loose.push(e.message);
  }
  const marked = errors.length - loose.length;
  const parts = marked ? [`入力内容に${marked}件の誤りがあります。各項目のメッセージを確認してください。`] : [];
  showText('callback-error', [...parts, ...loose].join(' '));
  if (first) first.focus();
}

/** The department the IVR choice points to (category code -> department code), when configured. */
export function preselectDepartment(category) {
  const map = (state.config && state.config.category_departments) || {};
  const code = category ? map[category] : null;
  const select = $('cb-department');
  if (code && !select.value && Array.from(select.options).some((o) => o.value === code)) select.value = code;
}

/** The consent script (records settings: text, lead, closed_leads; one id and version for all of it)
 * with its first words saying why the office is closed now (night, weekend, holiday, …). */
export function consentScriptFor(script, reason) {
  const lead = (script.closed_leads || {})[reason];
  const text = script.text;
  return lead && script.lead && text.startsWith(script.lead) ? lead + text.slice(script.lead.length) : text;
}

async function onCallbackSubmit(event) {
  event.preventDefault();
  if (!state.call) return;
  clearFieldErrors();
  showText('callback-error', ''); showText('callback-done', '');
  const body = {};
  for (const name of ['name', 'furigana', 'phone', 'question', 'department']) {
    const value = fieldInput(name).value.trim();
    body[name] = value || null;
  }
  for (const opt of ['address', 'email', 'fax']) {
    if (!$(`cb-use-${opt}`).checked) continue;
    body[opt] = fieldInput(opt).value.trim() || null;
    body[`${opt}_reason`] = fieldInput(`${opt}_reason`).value.trim() || null;
  }
  try {
    if (!state.callbackKey) state.callbackKey = newRequestKey();
    const cb = await api('POST', `/api/records/contacts/${encodeURIComponent(state.call.call_id)}/callbacks`, body,
      { 'Idempotency-Key': state.callbackKey });
    state.call.callback = cb.id;
    showText('callback-done', `折り返し依頼 #${cb.id} を登録しました（担当課への引き継ぎ日: ${cb.handover_date}）`);
    markOutcome('callback_requested');
    $('callback-save').disabled = true;
    upsertToday(state.call.call_id, { outcome: `折り返し依頼 #${cb.id}` });
  } catch (err) {
    if (err.status === 422 && err.errors.length) showFieldErrors(err.errors);
    else showText('callback-error', err.message);
  }
}

function onRevealToggle(event) {
  const box = event.target;
  const name = box.dataset.reveal;
  const div = document.querySelector(`.reveal[data-field="${name}"]`);
  div.hidden = !box.checked;
  if (box.checked) fieldInput(name).focus();
}

export function bindCallback() {
  $('consent-yes').addEventListener('click', () => recordConsent('yes'));
  $('consent-no').addEventListener('click', () => recordConsent('no'));
  $('callback-form').addEventListener('submit', onCallbackSubmit);
  for (const box of document.querySelectorAll('[data-reveal]')) box.addEventListener('change', onRevealToggle);
}
