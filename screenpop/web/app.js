// The operator screen. Plain ES module, no build step.
// Personal data (caller number, callback form) is only ever shown on screen or sent in request
// bodies: never in a URL, never in the console.

import { api, ApiError, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { HubClient } from './ws.js';

const FAQ_DEBOUNCE_MS = 250;
const OUTCOME_TEXT = {
  resolved: '解決', transferred: '転送', callback_requested: '折り返し依頼', declined: '記録を辞退', unanswered: '回答できず',
};
const CATEGORY_LABELS = {
  koseki: '戸籍・住民票', zei: '税', hoken: '保険・年金', gomi: 'ごみ・リサイクル', kosodate: '子育て', other: 'その他',
};
const FIELD_ALIASES = { phone: 'phone', daytime_phone: 'phone' };

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  config: null,
  hub: null,
  call: null,          // the current pop (dict) plus local flags
  faqUsed: new Set(),
  faqTimer: null,
  faqSeq: 0,
  openAnswerId: null,
  today: new Map(),    // call_id -> row
};

// ---- small DOM helpers --------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
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

function showText(id, text) {
  const node = $(id);
  node.textContent = text || '';
  node.hidden = !text;
}

function highlighted(text, spans) {
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

function hhmm(iso) {
  const d = iso ? new Date(iso) : new Date();
  return d.toLocaleTimeString('ja-JP', { hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Tokyo' });
}

function categoryLabel(pop) {
  if (pop.category_label) return pop.category_label;
  if (!pop.category) return '未選択';
  return CATEGORY_LABELS[pop.category] || 'その他';
}

function showScreen(name) {
  for (const id of ['screen-login', 'screen-seat', 'screen-desk']) $(id).hidden = id !== `screen-${name}`;
  $('logout').hidden = name === 'login';
}

function globalError(message) { showText('global-error', message); }

// ---- login and seat -------------------------------------------------------------------------------

function toLogin(message) {
  if (state.hub) { state.hub.stop(); state.hub = null; }
  state.me = null;
  setCsrfToken(null);
  $('user-label').hidden = true; $('seat-label').hidden = true; $('presence-label').hidden = true;
  setConn('未接続', '');
  showScreen('login');
  showText('login-error', message || '');
  $('login-password').value = '';
  $('login-user').focus();
}

function setMe(me) {
  state.me = me;
  setCsrfToken(me.csrf_token);
  $('user-label').textContent = `${me.display_name || me.user_id}（${me.role === 'supervisor' ? 'SV' : 'オペレーター'}）`;
  $('user-label').hidden = false;
  setSeat(me.seat);
}

// How people say a seat: PJSIP/101 -> 席101（内線101） (as screenpop/seats.py seat_label).
function seatLabel(iface) {
  const endpoint = (iface.split('/')[1] || '').split('@')[0];
  const digits = endpoint.match(/(\d+)(?!.*\d)/);
  return digits ? `席${digits[1]}（内線${digits[1]}）` : iface;
}

function setSeat(seat) {
  state.me.seat = seat || null;
  $('seat-label').textContent = seat ? seatLabel(seat) : '';
  $('seat-label').hidden = !seat;
}

const DESK_ROLES = new Set(['operator', 'supervisor']);

async function afterLogin(me) {
  if (!DESK_ROLES.has(me.role)) {
    // department staff and admins have their own page (/department/); this one is the operators' desk
    showScreen('login');
    showText('login-error', 'この画面はオペレーター用です。担当課の画面へ移動します…');
    location.assign('/department/');
    return;
  }
  setMe(me);
  globalError('');
  if (me.seat) await enterDesk();
  else await showSeatScreen();
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const user_id = $('login-user').value.trim();
  const password = $('login-password').value;
  if (!user_id) { showText('login-error', 'ユーザーIDを入力してください'); $('login-user').focus(); return; }
  if (!password) { showText('login-error', 'パスワードを入力してください'); $('login-password').focus(); return; }
  try {
    const me = await api('POST', '/api/login', { user_id, password });
    showText('login-error', '');
    $('login-password').value = '';
    await afterLogin(me);
  } catch (err) {
    showText('login-error', err.message);
    $('login-password').focus();
  }
}

async function showSeatScreen() {
  showScreen('seat');
  const box = $('seat-options');
  box.replaceChildren();
  let taken = {}, known = [];
  try {
    [taken, known] = await Promise.all([
      api('GET', '/api/seats').then((d) => d.seats || {}),
      loadConfig().then((c) => c.seats || []),
    ]);
  } catch (err) { showText('seat-error', err.message); }
  const all = Array.from(new Set([...known, ...Object.keys(taken)])).sort();
  all.forEach((iface, i) => {
    const holder = taken[iface];
    const mine = holder === state.me.user_id;
    const input = el('input', { type: 'radio', name: 'seat', value: iface, id: `seat-${i}` });
    if (holder && !mine) input.disabled = true;
    box.append(el('label', { htmlFor: `seat-${i}` }, input, ` ${seatLabel(iface)} `,
      el('span', { class: 'muted' }, iface),
      holder ? el('span', { class: 'muted' }, mine ? '（あなた）' : `（使用中: ${holder}）`) : null));
  });
  if (!all.length) box.append(el('p', { class: 'muted' }, '既知の席がありません。下の欄に入力してください。'));
  const first = box.querySelector('input:not([disabled])');
  if (first) { first.checked = true; first.focus(); } else $('seat-other').focus();
}

async function onSeatSubmit(event) {
  event.preventDefault();
  const other = $('seat-other').value.trim();
  const picked = document.querySelector('input[name=seat]:checked');
  const iface = other || (picked ? picked.value : '');
  if (!iface) { showText('seat-error', '席を選ぶか入力してください'); return; }
  try {
    const res = await api('POST', '/api/seat', { interface: iface });
    showText('seat-error', '');
    setSeat(res.seat);
    await enterDesk();
  } catch (err) {
    showText('seat-error', err.message);
  }
}

async function logout() {
  try { await api('POST', '/api/logout', {}); } catch (e) { /* the session may be gone already */ }
  toLogin('ログアウトしました。');
}

// ---- the desk -------------------------------------------------------------------------------------

async function loadConfig() {
  if (!state.config) state.config = await api('GET', '/api/operator/config');
  return state.config;
}

async function enterDesk() {
  showScreen('desk');
  const config = await loadConfig();
  fillDepartments(config.departments || []);
  $('consent-script').textContent = config.consent_script ? config.consent_script.text : '';
  await Promise.all([refreshOffice(), loadToday(), restoreCurrent()]);
  renderCall();
  startHub();
  $('call-title').focus();
}

function fillDepartments(departments) {
  const cb = $('cb-department');
  const tr = $('transfer-dept');
  cb.replaceChildren(el('option', { value: '' }, '選択してください'));
  tr.replaceChildren();
  for (const d of departments) {
    cb.append(el('option', { value: d.code }, d.name));
    if (d.transfer) tr.append(el('option', { value: d.code }, `${d.name}（${d.transfer}）`));
  }
}

async function refreshOffice() {
  try {
    const office = await api('GET', '/api/operator/office');
    const badge = $('office-status');
    badge.textContent = office.open ? '区役所: 開庁中' : `区役所: 閉庁（${office.reason_text || '時間外'}）`;
    badge.className = `badge ${office.open ? 'open' : 'closed'}`;
    badge.hidden = false;
    state.officeOpen = office.open;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) globalError(err.message);
  }
}

function setConn(text, cls) {
  const badge = $('conn-status');
  badge.textContent = text;
  badge.className = `badge ${cls || ''}`;
}

function startHub() {
  if (state.hub) return;
  state.hub = new HubClient({
    onMessage: onHubMessage,
    onStatus: (status, delay) => {
      if (status === 'open') setConn('接続中', 'open');
      else if (status === 'retrying') setConn(`再接続待ち（${Math.ceil(delay / 1000)}秒）`, 'bad');
      else if (status === 'connecting') setConn('接続しています…', '');
      else setConn('未接続', '');
    },
    onExpired: (message) => toLogin(message || 'セッションの有効期限が切れました。再度ログインしてください。'),
  });
  state.hub.start();
}

function onHubMessage(msg) {
  switch (msg.type) {
    case 'ringing': {
      const r = $('ringing');
      r.textContent = `着信中（呼出）: 通話ID ${msg.call_id} ／ ${msg.interface}`;
      r.hidden = false;
      r.dataset.callId = msg.call_id;
      break;
    }
    case 'pop':
      $('ringing').hidden = true;
      onPop(msg);
      break;
    case 'call_update':
      onCallUpdate(msg);
      break;
    case 'presence':
      if (state.me && msg.user_id === state.me.user_id) showPresence(msg.state, msg.reason);
      break;
    case 'snapshot':
      restoreCurrent();
      if (msg.state && msg.state.presence && msg.state.presence.state) {
        showPresence(msg.state.presence.state, msg.state.presence.reason);
      }
      break;
    case 'faq_results':
      onFaqResults(msg);
      break;
    case 'error':
      if (msg.code === 'faq_failed' || msg.code === 'faq_unavailable') $('faq-status').textContent = msg.message;
      else if (msg.code === 'presence_failed') showText('presence-error', msg.message);
      else globalError(msg.message || 'サーバーからエラーが通知されました');
      break;
    default:
      break;
  }
}

function showPresence(value, reason) {
  const label = $('presence-label');
  label.hidden = false;
  if (value === 'ready') { label.textContent = '受付可'; label.className = 'badge open'; }
  else if (value === 'pause') { label.textContent = `離席中（${reason || '理由なし'}）`; label.className = 'badge paused'; }
  else { label.textContent = 'ログオフ'; label.className = 'badge'; }
}

function setPresence(value) {
  const reason = value === 'pause' ? $('pause-reason').value : null;
  const sent = state.hub && state.hub.send({ type: 'presence_set', state: value, reason });
  showText('presence-error', sent ? '' : 'サーバーに接続されていないため変更できません');
}

// ---- the call card --------------------------------------------------------------------------------

async function onPop(pop) {
  state.call = { ...pop, status: '通話中', contactSaved: false, consent: null, callback: null };
  state.faqUsed = new Set();
  resetForms();
  renderCall();
  upsertToday(pop.call_id, { category_label: categoryLabel(pop), state: '通話中' });
  loadToday();
  $('call-title').focus();
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

const CALL_STATE_TEXT = { talking: '通話中', transferred: '転送済み', ended: '通話終了（結果を記録してください）' };

async function restoreCurrent() {
  // After a reload (or a resync snapshot): the latest pop, composed again by the server.
  try {
    const data = await api('GET', '/api/operator/current');
    const pop = data && data.pop;
    if (!pop || (state.call && state.call.call_id === pop.call_id)) return;
    state.call = { ...pop, status: CALL_STATE_TEXT[pop.call_state] || '', contactSaved: true, consent: null };
    state.faqUsed = new Set();
    resetForms();
    renderCall();
  } catch (err) { /* nothing to restore */ }
}

function onCallUpdate(msg) {
  if (msg.detail && msg.detail.ringing) {
    const r = $('ringing');
    if (r.dataset.callId === msg.call_id) r.hidden = true;
    return;
  }
  if (!state.call || state.call.call_id !== msg.call_id) {
    upsertToday(msg.call_id, { state: msg.event === 'transferred' ? '転送済み' : '終了' });
    return;
  }
  if (msg.event === 'transferred') {
    state.call.status = `転送済み（${msg.detail && msg.detail.target ? msg.detail.target : ''}）`;
    document.querySelector('input[name=outcome][value=transferred]').checked = true;
    upsertToday(msg.call_id, { state: '転送済み' });
  } else if (msg.event === 'hangup') {
    state.call.status = '通話終了（結果を記録してください）';
    upsertToday(msg.call_id, { state: '終了' });
  } else if (msg.event === 'answered') {
    state.call.status = '通話中';
  }
  renderCall();
}

function renderCall() {
  const call = state.call;
  $('call-empty').hidden = !!call;
  $('call-card').hidden = !call;
  const closed = !!call && call.office_open === false;
  $('callback-area').hidden = !closed;
  $('callback-unavailable').hidden = closed;
  $('transfer-btn').disabled = !call || call.office_open === false;
  $('transfer-note').textContent = !call ? '通話中のみ転送できます。'
    : call.office_open === false ? '閉庁中のため転送できません（折り返し依頼を受け付けてください）。' : '';
  if (!call) return;
  $('pop-number').textContent = call.caller_withheld || !call.caller_number ? '非通知' : call.caller_number;
  $('pop-call-id').textContent = call.call_id;
  $('pop-category').textContent = categoryLabel(call);
  $('pop-wait').textContent = call.waited_seconds == null ? '-' : `${Math.round(call.waited_seconds)}秒`;
  $('pop-office').textContent = call.office_open ? '開庁中（転送できます）'
    : `閉庁中${call.office_reason_text ? `（${call.office_reason_text}）` : ''}：折り返し依頼を受け付けられます`;
  $('pop-state').textContent = call.status;
  const history = $('pop-history');
  history.replaceChildren(...(call.history || []).map((h) => el('li', {},
    `${h.date || ''} ${h.category_label || CATEGORY_LABELS[h.category] || '未選択'} ${OUTCOME_TEXT[h.outcome] || h.outcome || '（結果未記録）'}`)));
  if (!history.children.length) history.append(el('li', { class: 'muted' }, 'ありません'));
  const callbacks = $('pop-callbacks');
  callbacks.replaceChildren(...(call.open_callbacks || []).map((c) => el('li', {},
    `#${c.id} ${c.status_text || c.status || ''} ${c.department || c.category_label || ''}`)));
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

function resetForms() {
  $('outcome-form').reset();
  $('gap-row').hidden = true;
  showText('outcome-error', ''); showText('outcome-done', '');
  $('callback-form').reset();
  $('callback-form').hidden = true;
  for (const div of document.querySelectorAll('.reveal')) div.hidden = true;
  clearFieldErrors();
  showText('callback-error', ''); showText('callback-done', '');
  $('consent-state').textContent = '';
  showText('consent-error', ''); showText('transfer-error', '');
  $('consent-yes').disabled = false; $('consent-no').disabled = false;
}

// ---- FAQ ------------------------------------------------------------------------------------------

function faqCredit() {
  return (state.config && state.config.faq_credit) || '出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）';
}

function onFaqInput() {
  clearTimeout(state.faqTimer);
  state.faqTimer = setTimeout(runFaqSearch, FAQ_DEBOUNCE_MS);
}

async function runFaqSearch() {
  const q = $('faq-q').value.trim();
  const seq = ++state.faqSeq;
  if (!q) {
    $('faq-results').replaceChildren(); $('faq-status').textContent = ''; showText('faq-credit', '');
    return;
  }
  $('faq-status').textContent = '検索中…';
  // Over the websocket when it is up (the words typed never go into a URL); HTTP otherwise.
  state.faqPending = q;
  if (state.hub && state.hub.send({ type: 'faq_search', q })) return;
  try {
    const data = await api('GET', `/api/faq/search?limit=10&q=${encodeURIComponent(q)}`);
    if (seq === state.faqSeq) renderFaqResults(data.results, data.credit);
  } catch (err) {
    if (seq === state.faqSeq) $('faq-status').textContent = err.message;
  }
}

function onFaqResults(msg) {
  if (msg.q !== state.faqPending || msg.q !== $('faq-q').value.trim()) return; // a newer query is on its way
  renderFaqResults(msg.results || [], null);
}

function renderFaqResults(results, credit) {
  const list = $('faq-results');
  closeAnswer(false);
  list.replaceChildren(...results.map((hit) => {
    const link = el('a', { href: '#', 'data-id': hit.id }, highlighted(hit.question, hit.question_highlights));
    link.addEventListener('click', (e) => { e.preventDefault(); openAnswer(hit.id); });
    return el('li', {}, link, el('p', { class: 'snippet' }, highlighted(hit.snippet, hit.snippet_highlights)));
  }));
  $('faq-status').textContent = results.length ? `${results.length}件` : '該当するFAQはありません';
  showText('faq-credit', results.length ? (credit || faqCredit()) : '');
}

async function openAnswer(id) {
  try {
    const entry = await api('GET', `/api/faq/${encodeURIComponent(id)}`);
    state.openAnswerId = entry.id;
    $('faq-answer-q').textContent = entry.question;
    $('faq-answer-body').textContent = entry.answer;
    $('faq-results').hidden = true;
    $('faq-answer').hidden = false;
    showText('faq-credit', entry.credit || faqCredit());
    $('faq-use').textContent = state.faqUsed.has(entry.id) ? '使用済み' : 'この回答を使用（記録）';
    $('faq-answer').focus();
  } catch (err) {
    $('faq-status').textContent = err.message;
  }
}

function closeAnswer(focusList = true) {
  $('faq-answer').hidden = true;
  $('faq-results').hidden = false;
  state.openAnswerId = null;
  if (focusList) {
    const first = $('faq-results').querySelector('a');
    (first || $('faq-q')).focus();
  }
}

function useAnswer() {
  if (!state.openAnswerId) return;
  state.faqUsed.add(state.openAnswerId);
  $('faq-use').textContent = '使用済み';
}

// ---- outcome and transfer -------------------------------------------------------------------------

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
  }
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
    document.querySelector('input[name=outcome][value=transferred]').checked = true;
  } catch (err) {
    if (call.status === '転送しています…') call.status = before;
    showText('transfer-error', err.message);
  }
  if (state.call === call) renderCall();
}

// ---- consent and callback -------------------------------------------------------------------------

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
      const radio = document.querySelector('input[name=outcome][value=declined]');
      radio.checked = true;
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
  if (!span || !input) return false;
  const reveal = input.closest('.reveal');
  if (reveal) reveal.hidden = false;
  span.textContent = message;
  span.id = span.id || `err-${name}`;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', span.id);
  input.focus();
  return true;
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
    const cb = await api('POST', `/api/records/contacts/${encodeURIComponent(state.call.call_id)}/callbacks`, body);
    state.call.callback = cb.id;
    showText('callback-done', `折り返し依頼 #${cb.id} を登録しました（担当課への引き継ぎ日: ${cb.handover_date}）`);
    document.querySelector('input[name=outcome][value=callback_requested]').checked = true;
    $('callback-save').disabled = true;
    upsertToday(state.call.call_id, { outcome: `折り返し依頼 #${cb.id}` });
  } catch (err) {
    if (!(err.field && showFieldError(err.field, err.message))) showText('callback-error', err.message);
  }
}

function onRevealToggle(event) {
  const box = event.target;
  const name = box.dataset.reveal;
  const div = document.querySelector(`.reveal[data-field="${name}"]`);
  div.hidden = !box.checked;
  if (box.checked) fieldInput(name).focus();
}

// ---- today's calls --------------------------------------------------------------------------------

async function loadToday() {
  // The server's rows (times on the server's clock) merged with what this page recorded (outcomes).
  try {
    const data = await api('GET', '/api/operator/calls');
    for (const row of data.items) {
      const mine = state.today.get(row.call_id);
      state.today.set(row.call_id, mine && mine.outcome ? { ...row, outcome: mine.outcome } : row);
    }
  } catch (err) { /* keep what is shown */ }
  renderToday();
}

function upsertToday(callId, patch) {
  const row = state.today.get(callId) || { call_id: callId, at: new Date().toISOString(), category_label: '', state: '' };
  Object.assign(row, patch);
  state.today.set(callId, row);
  renderToday();
}

function renderToday() {
  const rows = Array.from(state.today.values()).sort((a, b) => (a.at < b.at ? 1 : -1));
  $('today-rows').replaceChildren(...rows.map((r) => el('tr', {},
    el('td', {}, hhmm(r.at)), el('td', {}, r.call_id), el('td', {}, r.category_label || ''),
    el('td', {}, [r.state, r.outcome].filter(Boolean).join(' / ')))));
}

// ---- keyboard -------------------------------------------------------------------------------------

const PANELS = { 1: 'call-title', 2: 'faq-title', 3: 'outcome-title', 4: 'callback-title', 5: 'today-title' };

function onKeyDown(event) {
  if ($('screen-desk').hidden) return;
  const digit = event.code && event.code.startsWith('Digit') ? event.code.slice(5) : event.key;
  if (event.altKey && !event.ctrlKey && !event.metaKey && PANELS[digit]) {
    event.preventDefault();
    if (digit === '2') { $('faq-q').focus(); return; }
    $(PANELS[digit]).focus();
    return;
  }
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
    || target instanceof HTMLSelectElement;
  if (event.key === '/' && !typing && !event.altKey && !event.ctrlKey) {
    event.preventDefault();
    $('faq-q').focus();
    $('faq-q').select();
    return;
  }
  if (event.key === 'Escape' && !$('faq-answer').hidden) {
    event.preventDefault();
    closeAnswer(true);
  }
}

function onFaqKeyDown(event) {
  if (event.key === 'ArrowDown') {
    const first = $('faq-results').querySelector('a');
    if (first) { event.preventDefault(); first.focus(); }
  }
}

function onResultsKeyDown(event) {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
  const links = Array.from($('faq-results').querySelectorAll('a'));
  const i = links.indexOf(document.activeElement);
  if (i < 0) return;
  event.preventDefault();
  if (event.key === 'ArrowDown' && i + 1 < links.length) links[i + 1].focus();
  else if (event.key === 'ArrowUp') (i === 0 ? $('faq-q') : links[i - 1]).focus();
}

// ---- start ----------------------------------------------------------------------------------------

function bind() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  $('seat-form').addEventListener('submit', onSeatSubmit);
  $('logout').addEventListener('click', logout);
  $('btn-ready').addEventListener('click', () => setPresence('ready'));
  $('btn-pause').addEventListener('click', () => setPresence('pause'));
  $('faq-q').addEventListener('input', onFaqInput);
  $('faq-q').addEventListener('keydown', onFaqKeyDown);
  $('faq-form').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(state.faqTimer); runFaqSearch(); });
  $('faq-results').addEventListener('keydown', onResultsKeyDown);
  $('faq-use').addEventListener('click', useAnswer);
  $('faq-back').addEventListener('click', () => closeAnswer(true));
  $('outcome-form').addEventListener('submit', onOutcomeSubmit);
  $('outcome-form').addEventListener('change', () => {
    const picked = document.querySelector('input[name=outcome]:checked');
    $('gap-row').hidden = !(picked && picked.value === 'unanswered');
  });
  $('transfer-form').addEventListener('submit', onTransferSubmit);
  $('consent-yes').addEventListener('click', () => recordConsent('yes'));
  $('consent-no').addEventListener('click', () => recordConsent('no'));
  $('callback-form').addEventListener('submit', onCallbackSubmit);
  for (const box of document.querySelectorAll('[data-reveal]')) box.addEventListener('change', onRevealToggle);
  document.addEventListener('keydown', onKeyDown);
  setUnauthorizedHandler(() => toLogin('セッションの有効期限が切れました。再度ログインしてください。'));
  setInterval(() => { if (!$('screen-desk').hidden) refreshOffice(); }, 60000);
}

async function main() {
  bind();
  try {
    const me = await api('GET', '/api/me');
    await afterLogin(me);
  } catch (err) {
    toLogin(err instanceof ApiError && err.status === 401 ? '' : err.message);
  }
}

main();
