// Presence (受付状態): 受付可 / 通話中 / 後処理 / 離席 (reason) / 不在着信. Ready or away is sent over
// the websocket; the label shows what cti recorded (screenpop/desks.py), 通話中 while a call of
// mine is up, and, when the AMI link knows it, whether Asterisk agrees (queue_paused): it never
// says 受付可 when Asterisk has the seat paused. 後処理 and 不在着信 are set by cti itself.

import { $, hhmm, showText } from './dom.js';
import { state } from './state.js';

const WRAPUP = '後処理';
const MISSED = '不在着信';

export function setPresence(presence) {
  state.presence = presence;
  renderStatus();
  const missed = presence && presence.state === 'pause' && presence.reason === MISSED;
  showText('presence-notice', missed
    ? '着信に応答がなかったため「離席（不在着信）」にしました。受付を再開するときは「受付可」を押してください。' : '');
}

export function renderStatus() {
  const label = $('presence-label');
  const presence = state.presence;
  const value = presence ? presence.state : null;
  const asterisk = presence ? presence.queue_paused : null;  // true / false / null (not known)
  label.hidden = false;
  let text, cls, key;
  const onCall = (state.call && state.call.live) || (state.pendingPop && state.pendingPop.live);
  if (onCall) {
    [text, cls, key] = ['通話中', 'talking', 'talking'];
  } else if (value === 'ready' && presence.link === 'down') {
    [text, cls, key] = ['受付可（電話システム未接続のため未確認）', 'warn', 'ready'];
  } else if (value === 'ready' && asterisk === true) {
    [text, cls, key] = ['受付可に切替中（電話はまだ離席）', 'warn', 'ready'];
  } else if (value === 'ready') {
    [text, cls, key] = ['受付可', 'open', 'ready'];
  } else if (value === 'pause' && presence.reason === WRAPUP) {
    const until = presence.wrapup_until ? `（${hhmm(presence.wrapup_until)}まで）` : '';
    [text, cls, key] = [`後処理${until}`, 'wrapup', 'wrapup'];
  } else if (value === 'pause') {
    const note = presence.link === 'down' ? '（電話システム未接続: 接続後に反映）'
      : asterisk === false ? '（電話はまだ受付中）' : '';
    [text, cls, key] = [`離席中（${presence.reason || '理由なし'}）${note}`, 'paused', 'pause'];
  } else {
    [text, cls, key] = ['受付状態: 未設定', '', 'unset'];
  }
  label.textContent = text;
  label.className = `badge ${cls}`;
  label.dataset.state = key;
}

export function hidePresence() {
  state.presence = null;
  $('presence-label').hidden = true;
  showText('presence-notice', '');
}

function sendPresence(value) {
  const reason = value === 'pause' ? $('pause-reason').value : null;
  const sent = state.hub && state.hub.send({ type: 'presence_set', state: value, reason });
  showText('presence-error', sent ? '' : 'サーバーに接続されていないため変更できません');
}

/** 結果を記録 ends 後処理: back to 受付可. */
export function endWrapUp() {
  if (state.presence && state.presence.state === 'pause' && state.presence.reason === WRAPUP) sendPresence('ready');
}

export function onPresenceError(msg) { showText('presence-error', msg.message); }

export function bindPresence() {
  $('btn-ready').addEventListener('click', () => sendPresence('ready'));
  $('btn-pause').addEventListener('click', () => sendPresence('pause'));
}
