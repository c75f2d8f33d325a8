// Presence (受付状態): ready or away with a reason, sent over the websocket; the label shows what
// cti recorded and, when the AMI link knows it, whether Asterisk agrees.

import { $, showText } from './dom.js';
import { state } from './state.js';

export function showPresence(value, reason) {
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

export function onPresenceError(msg) { showText('presence-error', msg.message); }

export function bindPresence() {
  $('btn-ready').addEventListener('click', () => setPresence('ready'));
  $('btn-pause').addEventListener('click', () => setPresence('pause'));
}
