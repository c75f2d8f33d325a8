// Presence (受付状態): ready or away with a reason, sent over the websocket. The label shows what
// cti recorded (screenpop/desks.py) and, when the AMI link knows it, whether Asterisk agrees
// (queue_paused): it never says 受付可 when Asterisk has the seat paused.

import { $, showText } from './dom.js';
import { state } from './state.js';

export function showPresence(presence) {
  const label = $('presence-label');
  label.hidden = false;
  const value = presence ? presence.state : null;
  const asterisk = presence ? presence.queue_paused : null;  // true / false / null (not known)
  if (value === 'ready' && asterisk === true) {
    label.textContent = '受付可に切替中（電話はまだ離席）'; label.className = 'badge warn';
  } else if (value === 'ready') {
    label.textContent = '受付可'; label.className = 'badge open';
  } else if (value === 'pause') {
    const note = asterisk === false ? '（電話はまだ受付中）' : '';
    label.textContent = `離席中（${presence.reason || '理由なし'}）${note}`; label.className = 'badge paused';
  } else {
    label.textContent = '受付状態: 未設定'; label.className = 'badge';
  }
  label.dataset.state = value || 'unset';
}

function setPresence(value) {
  const reason = value === 'pause' ? $('pause-reason').value : null;
  const sent = state.hub && state.hub.send({ type: 'presence_set', state: value, reason });
  showText('presence-error', sent ? '' : 'サーバーに接続されていないため変更できません');
}

export function onPresenceError(msg) { showText('presence-error', msg.message); }

export function bindPresence() {
  $('btn-ready').addEventListener('click', () => setPresence('ready'));
  $('btn-pause').addEventListener('click', () => setPresence('pause'));
}
