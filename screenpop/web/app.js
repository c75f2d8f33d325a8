// The operator screen: login, seat, then the desk. Plain ES modules, no build step; each panel is
// its own module (pop_panel, faq_panel, outcome_panel, callback_panel, presence_panel, today_panel),
// call.js carries the current call, ws.js the websocket, api.js every HTTP call.
// Personal data (caller number, callback form) is only ever shown on screen or sent in request
// bodies: never in a URL, never in the console.

import { api, ApiError, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { bindCall, onCallUpdate, onPop, restoreCurrent, showPendingCall } from './call.js';
import { bindCallback, fillCallbackDepartments } from './callback_panel.js';
import { $, el, globalError, showText } from './dom.js';
import { bindFaq, closeAnswer, onFaqError, onFaqResults } from './faq_panel.js';
import { bindOutcome, fillTransferTargets, setOutcomeRecordedHandler } from './outcome_panel.js';
import { renderCall, showRinging } from './pop_panel.js';
import { bindPresence, endWrapUp, hidePresence, onPresenceError, renderStatus, setPresence } from './presence_panel.js';
import { state } from './state.js';
import { loadToday } from './today_panel.js';
import { HubClient } from './ws.js';

function showScreen(name) {
  for (const id of ['screen-seat', 'screen-desk']) $(id).hidden = id !== `screen-${name}`;
  $('logout').hidden = false;
}

// ---- login and seat -------------------------------------------------------------------------------

// There is one login screen, the server's (/login): `reason` picks its notice (expired, logged_out, login).
let leaving = false;
function toLogin(reason) {
  if (leaving) return;  // one navigation, even when several requests see the 401 at once
  leaving = true;
  if (state.hub) { state.hub.stop(); state.hub = null; }
  state.me = null;
  setCsrfToken(null);
  hidePresence();
  location.assign(`/login?m=${encodeURIComponent(reason || 'login')}`);
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
    globalError('この画面はオペレーター用です。担当課の画面へ移動します…');
    location.assign('/department/');
    return;
  }
  setMe(me);
  globalError('');
  if (me.seat) await enterDesk();
  else await showSeatScreen();
}

async function showSeatScreen(notice) {
  showScreen('seat');
  showText('seat-error', notice || '');
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
  toLogin('logged_out');
}

// ---- the desk -------------------------------------------------------------------------------------

async function loadConfig() {
  if (!state.config) state.config = await api('GET', '/api/operator/config');
  return state.config;
}

async function enterDesk() {
  showScreen('desk');
  const config = await loadConfig();
  fillCallbackDepartments(config.departments || []);
  fillTransferTargets(config.departments || []);
  $('consent-script').textContent = config.consent_script ? config.consent_script.text : '';
  await Promise.all([refreshOffice(), loadToday(), restoreCurrent()]);
  renderCall();
  renderStatus();
  startHub();
  $('call-title').focus();
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
    onExpired: () => toLogin('expired'),
  });
  state.hub.start();
}

function onHubMessage(msg) {
  switch (msg.type) {
    case 'ringing':
      showRinging(msg);
      break;
    case 'pop':
      onPop(msg);
      break;
    case 'call_update':
      onCallUpdate(msg);
      break;
    case 'presence':
      if (state.me && msg.user_id === state.me.user_id) setPresence(msg);
      break;
    case 'snapshot':
      onSnapshot(msg.state || {});
      break;
    case 'faq_results':
      onFaqResults(msg);
      break;
    case 'error':
      if (msg.code === 'faq_failed' || msg.code === 'faq_unavailable') onFaqError(msg);
      else if (msg.code === 'presence_failed') onPresenceError(msg);
      else globalError(msg.message || 'サーバーからエラーが通知されました');
      break;
    default:
      break;
  }
}

function onSnapshot(desk) {
  // A (re)connected page learns its seat and presence as the server holds them (after a restart too).
  if (!state.me) return;
  if (state.me.seat && !desk.seat) {
    setSeat(null);
    hidePresence();  // no seat, no presence: nothing may look like 受付可
    showSeatScreen('サーバーの再起動などで席の割り当てがなくなりました。席をもう一度選んでください。');
    return;
  }
  if (desk.seat && desk.seat !== state.me.seat) setSeat(desk.seat);
  setPresence(desk.presence || null);
  restoreCurrent();
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

// ---- start ----------------------------------------------------------------------------------------

function bind() {
  $('seat-form').addEventListener('submit', onSeatSubmit);
  $('logout').addEventListener('click', logout);
  bindPresence();
  bindFaq();
  bindOutcome();
  bindCallback();
  bindCall();
  setOutcomeRecordedHandler(() => { endWrapUp(); showPendingCall(); });
  document.addEventListener('keydown', onKeyDown);
  setInterval(() => { if (!$('screen-desk').hidden) refreshOffice(); }, 60000);
}

async function main() {
  bind();
  // Not logged in yet: the 401 of /api/me sends the browser to the login page.
  setUnauthorizedHandler(() => toLogin('login'));
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) globalError(err.message);
    return;
  }
  // from now on a 401 means the session ended
  setUnauthorizedHandler(() => toLogin('expired'));
  try {
    await afterLogin(me);
  } catch (err) {
    globalError(err.message);
  }
}

main();
