// Supervisor screen: live wall (websocket "wall" messages, polling as a fallback), access alerts,
// calendar control (emergency close, overrides), reports with an SVG chart and CSV, FAQ gaps.
// Text goes into the page with textContent only.

import { $, api, say, setCsrfToken } from '/static/api.js';

function row(tbody, values) {
  const tr = document.createElement('tr');
  for (const v of values) { const td = document.createElement('td'); td.textContent = v == null ? '' : String(v); tr.appendChild(td); }
  tbody.appendChild(tr);
  return tr;
}
function secs(n) { if (n == null) return ''; const m = Math.floor(n / 60); return m ? `${m}分${n % 60}秒` : `${n}秒`; }
function fmt(iso) {
  return iso ? new Date(iso).toLocaleString('ja-JP', { timeZone: 'Asia/Tokyo', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
}

// ---- wall -----------------------------------------------------------------------------------
function renderWall(w) {
  const v = (k) => document.querySelector(`[data-k="${k}"]`);
  v('waiting').textContent = String(w.waiting);
  v('longest').textContent = secs(w.longest_wait_seconds);
  v('in_progress').textContent = String(w.in_progress);
  v('overdue').textContent = String(w.overdue_callbacks);
  $('t-waiting').classList.toggle('alarm', w.waiting > 0 && w.longest_wait_seconds >= 60);
  $('t-overdue').classList.toggle('alarm', w.overdue_callbacks > 0);
  $('wall-at').textContent = `（${fmt(w.at)} 更新）`;
  const ops = $('operators').querySelector('tbody');
  ops.replaceChildren();
  for (const o of w.operators) row(ops, [o.operator_id, o.state_text, o.pause_reason, o.call_id, secs(o.state_seconds)]).dataset.state = o.state;
  const wt = $('waiting').querySelector('tbody');
  wt.replaceChildren();
  for (const c of w.waiting_calls) row(wt, [c.call_id, c.category, secs(c.wait_seconds)]);
}

// ---- alerts ---------------------------------------------------------------------------------
function addAlert(a, prepend = true) {
  const li = document.createElement('li');
  li.textContent = `${fmt(a.at)} ${a.text}`;
  if (prepend) $('alerts').prepend(li); else $('alerts').appendChild(li);
  $('alerts-none').hidden = true;
}

// ---- calendar -------------------------------------------------------------------------------
const KIND = { closure: '臨時休業', opening: '臨時開庁' };
const APPLIES = { both: '両方', call_center: 'コールセンター', office: '区役所' };

async function loadCalendar() {
  const em = await api('GET', '/api/calendar/emergency');
  const cc = em.call_center;
  $('cc-status').textContent = cc.open ? '受付中' : `停止中（${cc.reason_text || cc.reason}）`;
  const ov = await api('GET', '/api/calendar/overrides');
  const tbody = $('overrides').querySelector('tbody');
  tbody.replaceChildren();
  for (const o of ov.items) {
    const tr = row(tbody, [KIND[o.kind], APPLIES[o.applies_to], fmt(o.start), fmt(o.end), o.reason]);
    const td = document.createElement('td');
    if (o.removable) {
      const b = document.createElement('button');
      b.type = 'button'; b.textContent = '削除';
      b.addEventListener('click', async () => {
        try { await api('DELETE', `/api/calendar/overrides/${encodeURIComponent(o.id)}`); say('cal-message', '削除しました'); await loadCalendar(); }
        catch (e) { say('cal-message', e.message, 'error'); }
      });
      td.appendChild(b);
    } else { td.textContent = '設定ファイル'; }
    tr.appendChild(td);
  }
}

async function setEmergency(active) {
  try {
    const body = active ? { active: true, reason: $('em-reason').value } : { active: false };
    await api('POST', '/api/calendar/emergency', body);
    say('cal-message', active ? '受付を緊急停止しました' : '緊急停止を解除しました');
    await loadCalendar();
  } catch (e) { say('cal-message', e.message, 'error'); }
}

// ---- reports --------------------------------------------------------------------------------
function drawChart(byHour) {
  const svg = $('rep-chart');
  svg.replaceChildren();
  const ns = 'http://www.w3.org/2000/svg';
  const max = Math.max(1, ...byHour.map((h) => h.offered));
  byHour.forEach((h, i) => {
    const x = 10 + i * 29;
    const height = Math.round((h.offered / max) * 120);
    const ans = Math.round((h.answered / max) * 120);
    for (const [hh, color, dx] of [[height, '#9db8e8', 0], [ans, '#0b57d0', 12]]) {
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', x + dx); r.setAttribute('y', 135 - hh); r.setAttribute('width', 11); r.setAttribute('height', hh);
      r.setAttribute('fill', color);
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${h.hour}時 着信${h.offered} 応答${h.answered}`;
      r.appendChild(title);
      svg.appendChild(r);
    }
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', x); t.setAttribute('y', 150); t.textContent = String(h.hour);
    svg.appendChild(t);
  });
}

async function loadReport(ev) {
  if (ev) ev.preventDefault();
  const kind = $('rep-kind').value;
  const period = $('rep-period').value.trim();
  const q = `kind=${encodeURIComponent(kind)}${period ? `&period=${encodeURIComponent(period)}` : ''}`;
  try {
    const r = await api('GET', `/api/reports?${q}`);
    $('rep-period').value = r.period.label;
    $('rep-csv').href = `/api/reports.csv?kind=${kind}&period=${encodeURIComponent(r.period.label)}`;
    const t = r.totals;
    $('rep-totals').textContent = `${r.period.label}: 着信 ${t.offered} / 応答 ${t.answered} / 放棄 ${t.abandoned} / 時間外 ${t.after_hours}`
      + ` / 平均待ち ${t.avg_wait_seconds ?? '-'}秒 / 90%待ち ${t.p90_wait_seconds ?? '-'}秒`;
    drawChart(r.by_hour);
    const cat = $('rep-cat').querySelector('tbody'); cat.replaceChildren();
    for (const c of r.by_category) row(cat, [c.category, c.offered, c.answered, c.abandoned, c.avg_wait_seconds, c.p90_wait_seconds]);
    const dep = $('rep-dept').querySelector('tbody'); dep.replaceChildren();
    for (const d of r.callbacks_by_department) row(dep, [d.name || d.department, d.created, d.handed_over, d.closed, d.overdue]);
    say('rep-message', '');
  } catch (e) { say('rep-message', e.message, 'error'); }
}

async function loadGaps() {
  const g = await api('GET', '/api/supervisor/faq-gaps?limit=50');
  const tbody = $('gaps').querySelector('tbody'); tbody.replaceChildren();
  for (const x of g.items) row(tbody, [fmt(x.created_at), x.category, (x.faq_entries || []).join(', '), x.note]);
}

// ---- websocket ------------------------------------------------------------------------------
function connectHub() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  ws.addEventListener('open', () => { $('ws-status').textContent = 'リアルタイム接続中'; ws.send(JSON.stringify({ type: 'resume', last_seq: 0 })); });
  ws.addEventListener('message', (ev) => {
    let msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (msg.type === 'wall') renderWall(msg.state);
    else if (msg.type === 'access_alert') addAlert(msg.alert);
  });
  ws.addEventListener('close', () => { $('ws-status').textContent = '再接続中…'; setTimeout(connectHub, 3000); });
}

async function main() {
  const me = await api('GET', '/api/me');
  setCsrfToken(me.csrf_token);
  $('who').textContent = `${me.display_name || me.user_id}（${me.role}）`;
  $('logout').addEventListener('click', async () => { await api('POST', '/api/logout', {}); location.href = '/login'; });
  $('em-on').addEventListener('click', () => setEmergency(true));
  $('em-off').addEventListener('click', () => setEmergency(false));
  $('ov-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/calendar/overrides', { kind: $('ov-kind').value, applies_to: $('ov-applies').value,
        start: $('ov-start').value, end: $('ov-end').value, reason: $('ov-reason').value });
      say('cal-message', '追加しました');
      await loadCalendar();
    } catch (e) { say('cal-message', e.message, 'error'); }
  });
  $('rep-form').addEventListener('submit', loadReport);
  renderWall(await api('GET', '/api/supervisor/wall'));
  for (const a of (await api('GET', '/api/supervisor/alerts')).items) addAlert(a, false);
  await Promise.all([loadCalendar(), loadReport(), loadGaps()]);
  connectHub();
  setInterval(async () => { try { renderWall(await api('GET', '/api/supervisor/wall')); } catch (e) { /* shown on next success */ } }, 5000);
}

main().catch((e) => say('cal-message', e.message, 'error'));
