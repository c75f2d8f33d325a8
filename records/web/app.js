// Department screen: inbox of handed-over callback requests, record view, click-to-call with live
// progress, attempt outcomes and close. Text goes into the page with textContent only.

import { $, api, setCsrfToken } from '/static/api.js';
import { mountNav } from '/static/nav.js';

let me = null;
let current = null; // the record shown
let pollTimer = null;
let knownIds = null; // the inbox's ids at the last refresh (a new one is announced)
const INBOX_REFRESH_MS = 15000;

function say(text, kind = 'ok') {
  const el = $('message');
  el.textContent = text;
  el.className = `message ${kind}`;
}

function fmt(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString('ja-JP', { timeZone: 'Asia/Tokyo', month: 'numeric', day: 'numeric',
    hour: '2-digit', minute: '2-digit' });
}

function cell(tr, text) { const td = document.createElement('td'); td.textContent = text; tr.appendChild(td); }

async function loadInbox() {
  const closed = $('show-closed').checked ? '?closed=true' : '';
  const data = await api('GET', `/api/department/inbox${closed}`);
  const tbody = $('inbox').querySelector('tbody');
  const focusedId = document.activeElement && document.activeElement.closest('#inbox tbody tr')
    ? document.activeElement.dataset.id : null;
  tbody.replaceChildren();
  for (const item of data.items) {
    const tr = document.createElement('tr');
    tr.dataset.id = item.id;
    tr.tabIndex = 0;
    if (item.overdue) tr.classList.add('overdue');
    if (current && current.id === item.id) tr.classList.add('selected');
    cell(tr, String(item.id));
    cell(tr, item.status_text);
    cell(tr, (item.overdue ? '期限超過 ' : '') + fmt(item.due_by));
    cell(tr, item.department_name || item.department);
    cell(tr, fmt(item.collected_at));
    tr.addEventListener('click', () => openRecord(item.id));
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') openRecord(item.id); });
    tbody.appendChild(tr);
    if (focusedId === String(item.id)) tr.focus(); // a refresh never takes the keyboard's place
  }
  const ids = data.items.map((i) => i.id);
  const fresh = knownIds ? ids.filter((id) => !knownIds.has(id)) : [];
  if (fresh.length) $('inbox-notice').textContent = `新しい依頼が${fresh.length}件あります`;
  knownIds = new Set(ids);
  $('inbox-empty').hidden = data.items.length > 0;
  if (data.department_name) $('who').textContent = `${me.display_name || me.user_id}（${data.department_name}）`;
  const s = data.summary;
  $('summary').textContent = `（${s.total}件・期限超過 ${s.overdue}件）`;
}

function show(record) {
  current = record;
  $('detail').hidden = false;
  $('d-id').textContent = `#${record.id}`;
  $('d-status').textContent = record.status_text;
  $('d-name').textContent = record.name || '';
  $('d-furigana').textContent = record.furigana || '';
  $('d-phone').textContent = record.phone_display || record.phone || '';
  $('d-answer').textContent = record.answer_summary || '（まだありません）';
  $('d-question').textContent = record.question || '';
  $('d-due').textContent = (record.overdue ? '期限超過 ' : '') + fmt(record.due_by);
  const ol = $('d-attempts');
  ol.replaceChildren();
  for (const a of record.attempts || []) {
    const li = document.createElement('li');
    li.textContent = `${fmt(a.at)} ${a.outcome === 'reached' ? 'つながった' : 'つながらなかった'}（${a.staff}）`;
    ol.appendChild(li);
  }
  const closed = record.status === 'closed' || record.status === 'closed_unreached';
  for (const id of ['call', 'reached', 'not-reached', 'close']) $(id).disabled = closed;
  for (const tr of $('inbox').querySelectorAll('tbody tr')) {
    tr.classList.toggle('selected', Number(tr.dataset.id) === record.id);
  }
}

async function openRecord(id) {
  try {
    show(await api('GET', `/api/records/callbacks/${id}`));
    resetProgress();
    say('');
    $('detail-h').focus(); // the keyboard follows; the heading (依頼 #N and its status) is read out
  } catch (e) { say(e.message, 'error'); }
}

const PROGRESS_TEXT = {
  sending: '発信しています…', queued: 'あなたの電話を呼び出しています…', answered: 'お客様に発信しています…',
  ringing_staff: 'あなたの電話を呼び出しています…', staff_answered: 'お客様に発信しています…',
  dialing_citizen: 'お客様を呼び出しています…', citizen_answered: '通話中です',
  uncertain: '発信状況を確認しています…', failed: '発信できませんでした', lost: '発信状況が不明です',
};
const OUTCOME_TEXT = {
  completed: '通話が終わりました', staff_no_answer: 'あなたの電話が応答しませんでした',
  citizen_no_answer: 'お客様が応答しませんでした', citizen_busy: 'お客様は話し中でした',
  citizen_unreachable: 'お客様につながりませんでした', cancelled: '発信を取り消しました', failed: '発信に失敗しました',
};

// The call's progress only moves forward: the 2 s poll can answer with an older state than the hub's
// last message (e.g. 'answered' after 'citizen_answered'); an older one is ignored.
const PROGRESS_RANK = {
  sending: 0, queued: 1, uncertain: 1, ringing_staff: 1, answered: 2, staff_answered: 2,
  dialing_citizen: 3, citizen_answered: 4, failed: 5, lost: 5, ended: 5,
};
let progressRank = -1;

function resetProgress() {
  progressRank = -1;
  $('call-progress').textContent = '';
  $('call-progress').dataset.events = '';
}

function progress(event, outcome) {
  const rank = PROGRESS_RANK[event] ?? progressRank;
  if (rank < progressRank) return;
  progressRank = rank;
  let text = PROGRESS_TEXT[event] || event;
  if (event === 'ended') text = OUTCOME_TEXT[outcome] || '通話が終わりました';
  if (event === 'ended') text += '。結果を記録してください';
  $('call-progress').textContent = text;
}

async function placeCall() {
  if (!current) return;
  const extension = $('extension').value.trim();
  if (extension) localStorage.setItem('cti.extension', extension);
  resetProgress(); // before the request: the hub's progress may arrive before its answer
  try {
    const res = await api('POST', `/api/department/callbacks/${current.id}/call`,
      { extension: extension || undefined, version: current.version });
    show(res.callback);
    progress(res.state); // may be older than the hub's first messages: then ignored
    watchCall(current.id);
  } catch (e) { say(e.message, 'error'); }
}

function watchCall(id) {
  clearInterval(pollTimer);
  pollTimer = setInterval(async () => {
    try {
      const st = await api('GET', `/api/department/callbacks/${id}/call`);
      if (!st.active) {
        clearInterval(pollTimer);
        if ($('call-progress').textContent.indexOf('結果を記録') < 0) progress('ended', st.state === 'failed' ? 'failed' : null);
      } else { progress(st.state); }
    } catch (e) { clearInterval(pollTimer); }
  }, 2000);
}

async function ensureStarted() {
  if (current.status === 'handed_over') {
    show(await api('POST', `/api/records/callbacks/${current.id}/start`, { version: current.version }));
  }
}

async function attempt(outcome) {
  if (!current) return;
  try {
    await ensureStarted();
    show(await api('POST', `/api/records/callbacks/${current.id}/attempts`, { outcome, version: current.version }));
    say(outcome === 'reached' ? '「つながった」を記録しました' : '「つながらなかった」を記録しました');
    await loadInbox();
  } catch (e) { say(e.message, 'error'); }
}

async function closeRecord() {
  if (!current) return;
  const summary = $('summary-text').value.trim();
  if (!summary) { say('回答の要約を入力してください', 'error'); $('summary-text').focus(); return; }
  try {
    await ensureStarted();
    show(await api('POST', `/api/records/callbacks/${current.id}/close`, { summary, version: current.version }));
    $('summary-text').value = '';
    say('完了にしました');
    await loadInbox();
  } catch (e) { say(e.message, 'error'); }
}

function connectHub() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try { ws = new WebSocket(`${scheme}//${location.host}/ws`); } catch (e) { return; }
  ws.addEventListener('open', () => {
    $('ws-status').textContent = '接続中';
    ws.send(JSON.stringify({ type: 'resume', last_seq: 0 }));
  });
  ws.addEventListener('message', (ev) => {
    let msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (msg.type === 'callback_progress' && current && String(current.id) === msg.callback_id) {
      const el = $('call-progress');
      el.dataset.events = (el.dataset.events ? `${el.dataset.events},` : '') + msg.event; // the live trail
      progress(msg.event, msg.outcome);
    }
  });
  ws.addEventListener('close', () => { $('ws-status').textContent = ''; setTimeout(connectHub, 5000); });
}

async function main() {
  me = await api('GET', '/api/me');
  mountNav(me);
  setCsrfToken(me.csrf_token);
  $('who').textContent = `${me.display_name || me.user_id}`;
  $('extension').value = localStorage.getItem('cti.extension') || '';
  $('reload').addEventListener('click', () => loadInbox().catch((e) => say(e.message, 'error')));
  $('show-closed').addEventListener('change', () => loadInbox());
  $('call').addEventListener('click', placeCall);
  $('reached').addEventListener('click', () => attempt('reached'));
  $('not-reached').addEventListener('click', () => attempt('not_reached'));
  $('close').addEventListener('click', closeRecord);
  $('logout').addEventListener('click', async () => { await api('POST', '/api/logout', {}); location.href = '/login'; });
  await loadInbox();
  setInterval(() => loadInbox().catch(() => {}), INBOX_REFRESH_MS); // live without a reload
  connectHub();
}

main().catch((e) => say(e.message, 'error'));
