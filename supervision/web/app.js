// Supervisor screen: live wall (websocket "wall" messages, polling as a fallback), access alerts,
// calendar control (emergency close, overrides), reports with an SVG chart and CSV, FAQ gaps.
// Text goes into the page with textContent only.

import { $, api, say, setCsrfToken } from '/static/api.js';
import { mountNav } from '/static/nav.js';

function row(tbody, values) {
  const tr = document.createElement('tr');
  for (const v of values) { const td = document.createElement('td'); td.textContent = v == null ? '' : String(v); tr.appendChild(td); }
  tbody.appendChild(tr);
  return tr;
}
function secs(n) { if (n == null) return ''; const m = Math.floor(n / 60); return m ? `${m}分${n % 60}秒` : `${n}秒`; }
// Report figures: seconds to one decimal ("10.0秒"), never the raw float.
function sec1(n) { return n == null ? '-' : `${Number(n).toFixed(1)}秒`; }
const ROLE_TEXT = { operator: 'オペレーター', supervisor: 'スーパーバイザー', admin: '管理者', department: '担当課職員' };
function fmt(iso) {
  return iso ? new Date(iso).toLocaleString('ja-JP', { timeZone: 'Asia/Tokyo', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
}

// ---- wall -----------------------------------------------------------------------------------
function alarm(id, on, text) {
  const tile = $(id);
  tile.classList.toggle('alarm', on);
  let flag = tile.querySelector('.flag');
  if (!flag) { flag = document.createElement('div'); flag.className = 'flag'; tile.append(flag); }
  flag.textContent = on ? text : '';
}

function renderWall(w) {
  const v = (k) => document.querySelector(`[data-k="${k}"]`);
  v('waiting').textContent = String(w.waiting);
  v('longest').textContent = secs(w.longest_wait_seconds);
  v('in_progress').textContent = String(w.in_progress);
  v('overdue').textContent = String(w.overdue_callbacks);
  // Not by colour alone: an alarm tile also says so in words (with a sign).
  alarm('t-waiting', w.waiting > 0 && w.longest_wait_seconds >= 60, '⚠ 60秒以上待っている方がいます');
  alarm('t-overdue', w.overdue_callbacks > 0, '⚠ 期限を過ぎた依頼があります');
  $('wall-at').textContent = `（${fmt(w.at)} 更新）`;
  const ops = $('operators').querySelector('tbody');
  ops.replaceChildren();
  for (const o of w.operators) row(ops, [o.operator_id, o.state_text, o.pause_reason, o.call_id ? (o.reference || '番号なし') : '', secs(o.state_seconds)]).dataset.state = o.state;
  $('unseated').textContent = w.unseated_seats ? `ほかに未着席の席が${w.unseated_seats}席あります。` : '';
  const wt = $('waiting').querySelector('tbody');
  wt.replaceChildren();
  for (const c of w.waiting_calls) row(wt, [c.reference || '呼出前', c.category_label, secs(c.wait_seconds)]);
  const calls = $('ovcb-calls');
  calls.replaceChildren();
  for (const c of w.calls) {
    const o = document.createElement('option');
    const talking = c.on_hold ? '通話中（保留中）' : '通話中';
    const ref = c.reference ? `${c.reference} ` : '';
    o.value = c.call_id; o.label = c.operator_id ? `${ref}${c.operator_id} が${talking}` : `${ref}${talking}`;
    calls.appendChild(o);
  }
}

// ---- alerts ---------------------------------------------------------------------------------
// One entry per stored alert id: the list from the API, the websocket's live alerts and the hub's
// replay after a reconnect all land in this map, so an alert is never shown twice.
const alerts = new Map();
const KIND_TEXT = { bulk_reads: '大量参照', off_hours_read: '閉庁時間中の参照', login_failures: 'ログイン失敗の多発' };

function renderAlerts() {
  const ul = $('alerts');
  ul.replaceChildren();
  const open = [...alerts.values()].filter((a) => !a.acknowledged_at).sort((a, b) => b.id - a.id);
  for (const a of open) {
    const li = document.createElement('li');
    li.dataset.alertId = String(a.id);
    const text = document.createElement('span');
    text.textContent = `${fmt(a.at)} 【${KIND_TEXT[a.kind] || a.kind}】${a.text}`;
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = '確認済みにする';
    b.setAttribute('aria-label', `警告 ${a.id} を確認済みにする`);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const done = await api('POST', `/api/supervisor/alerts/${a.id}/ack`, {});
        putAlert(done);
        say('alerts-message', '確認済みにしました');
      } catch (e) {
        if (e.status === 409) putAlert({ ...a, acknowledged_at: a.acknowledged_at || 'done' }); else b.disabled = false;
        say('alerts-message', e.message, 'error');
      }
    });
    li.append(text, ' ', b);
    ul.appendChild(li);
  }
  $('alerts-none').hidden = open.length > 0;
}

function putAlert(a) {
  if (a == null || a.id == null) return;
  alerts.set(a.id, { ...(alerts.get(a.id) || {}), ...a });
  renderAlerts();
}

function alertAcknowledged(msg) {
  const a = alerts.get(msg.id);
  if (a) putAlert({ ...a, acknowledged_at: msg.acknowledged_at, acknowledged_by: msg.acknowledged_by });
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
// Offered and answered calls per hour: bars with a y axis (calls), an x axis (hour), a legend, and
// the same figures in the table below (the chart is a picture; the table is what a screen reader reads).
const SERIES = [['offered', '着信', '#9db8e8'], ['answered', '応答', '#0b57d0']];

function drawChart(byHour) {
  const svg = $('rep-chart');
  svg.replaceChildren();
  const ns = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  const left = 44, top = 28, bottom = 190, width = 26 * 24;
  const peak = Math.max(1, ...byHour.map((h) => h.offered));
  const step = Math.max(1, Math.ceil(peak / 4));
  const max = step * 4;
  const y = (v) => bottom - Math.round((v / max) * (bottom - top));
  for (let v = 0; v <= max; v += step) {
    el('line', { x1: left, x2: left + width, y1: y(v), y2: y(v), stroke: v ? '#e2e6ee' : '#555' });
    el('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11 }, String(v));
  }
  el('line', { x1: left, x2: left, y1: top, y2: bottom, stroke: '#555' });
  el('text', { x: 4, y: 14, 'font-size': 11 }, '件数');
  byHour.forEach((h, i) => {
    const x = left + 2 + i * 26;
    SERIES.forEach(([key, label, color], k) => {
      const r = el('rect', { x: x + k * 11, y: y(h[key]), width: 10, height: bottom - y(h[key]), fill: color });
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${h.hour}時 ${label}${h[key]}件`;
      r.appendChild(title);
    });
    el('text', { x: x + 11, y: bottom + 14, 'text-anchor': 'middle', 'font-size': 11 }, String(h.hour));
  });
  el('text', { x: left + width / 2, y: bottom + 30, 'text-anchor': 'middle', 'font-size': 11 }, '時台（着信した時刻）');
  SERIES.forEach(([, label, color], k) => {
    const lx = left + width - 150 + k * 70;
    el('rect', { x: lx, y: 6, width: 12, height: 12, fill: color });
    el('text', { x: lx + 16, y: 16, 'font-size': 12 }, label);
  });
  const tbody = $('rep-hour').querySelector('tbody');
  tbody.replaceChildren();
  for (const h of byHour) {
    if (h.offered || h.answered || h.abandoned) row(tbody, [`${h.hour}時台`, h.offered, h.answered, h.abandoned, sec1(h.avg_wait_seconds)]);
  }
  if (!tbody.children.length) row(tbody, ['着信はありません', '', '', '', '']);
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
      + ` / 平均待ち ${sec1(t.avg_wait_seconds)} / 90%待ち ${sec1(t.p90_wait_seconds)}`;
    drawChart(r.by_hour);
    const cat = $('rep-cat').querySelector('tbody'); cat.replaceChildren();
    for (const c of r.by_category) row(cat, [c.label || c.category, c.offered, c.answered, c.abandoned, sec1(c.avg_wait_seconds), sec1(c.p90_wait_seconds)]);
    const dep = $('rep-dept').querySelector('tbody'); dep.replaceChildren();
    for (const d of r.callbacks_by_department) row(dep, [d.name || d.department, d.created, d.handed_over, d.closed, d.overdue]);
    fillDepartments(r.callbacks_by_department);
    say('rep-message', '');
  } catch (e) { say('rep-message', e.message, 'error'); }
}

async function loadGaps() {
  const g = await api('GET', '/api/supervisor/faq-gaps?limit=50');
  const tbody = $('gaps').querySelector('tbody'); tbody.replaceChildren();
  for (const x of g.items) row(tbody, [fmt(x.created_at), x.category_label || x.category, (x.faq_entries || []).join(', '), x.note]);
}

// ---- callback request while the office is open (supervisor override with its reason) -------------
function fillDepartments(depts) {
  const sel = $('ovcb-dept');
  if (sel.options.length) return;
  const none = document.createElement('option'); none.value = ''; none.textContent = '選択してください';
  sel.appendChild(none);
  for (const d of depts) {
    const o = document.createElement('option'); o.value = d.department; o.textContent = d.name || d.department;
    sel.appendChild(o);
  }
}

async function submitOverrideCallback(ev) {
  ev.preventDefault();
  const callId = $('ovcb-call').value.trim();
  try {
    const cb = await api('POST', `/api/records/contacts/${encodeURIComponent(callId)}/callbacks`, {
      department: $('ovcb-dept').value, name: $('ovcb-name').value, phone: $('ovcb-phone').value,
      question: $('ovcb-question').value, override_reason: $('ovcb-reason').value,
    });
    say('ovcb-message', `折り返し依頼 ${cb.id} を受け付けました（理由: ${cb.override_reason || '閉庁時間中'}、引き継ぎ日 ${cb.handover_date}）`);
    for (const id of ['ovcb-name', 'ovcb-phone', 'ovcb-question', 'ovcb-reason']) $(id).value = '';
  } catch (e) { say('ovcb-message', e.message, 'error'); }
}

async function loadOfficeStatus() {
  const s = await api('GET', '/api/calendar/emergency');
  const office = s.office;
  $('office-status').textContent = office ? (office.open ? '開庁中' : `閉庁中（${office.reason_text || ''}）`) : '';
}

// ---- websocket ------------------------------------------------------------------------------
function connectHub() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  ws.addEventListener('open', () => { $('ws-status').textContent = 'リアルタイム接続中'; ws.send(JSON.stringify({ type: 'resume', last_seq: 0 })); });
  ws.addEventListener('message', (ev) => {
    let msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (msg.type === 'wall') renderWall(msg.state);
    else if (msg.type === 'access_alert') putAlert(msg.alert);
    else if (msg.type === 'alert_acknowledged') alertAcknowledged(msg);
  });
  ws.addEventListener('close', () => { $('ws-status').textContent = '再接続中…'; setTimeout(connectHub, 3000); });
}

async function main() {
  const me = await api('GET', '/api/me');
  mountNav(me);
  setCsrfToken(me.csrf_token);
  $('who').textContent = `${me.display_name || me.user_id}（${ROLE_TEXT[me.role] || me.role}）`;
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
  $('ovcb-form').addEventListener('submit', submitOverrideCallback);
  renderWall(await api('GET', '/api/supervisor/wall'));
  for (const a of (await api('GET', '/api/supervisor/alerts')).items) putAlert(a);
  await Promise.all([loadCalendar(), loadReport(), loadGaps(), loadOfficeStatus()]);
  connectHub();
  setInterval(async () => { try { renderWall(await api('GET', '/api/supervisor/wall')); } catch (e) { /* shown on next success */ } }, 5000);
}

main().catch((e) => say('cal-message', e.message, 'error'));
