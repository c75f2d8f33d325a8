// Hold (保留 / 保留解除) and consult transfer (相談転送 → 転送完了 / 取消) of the current call.
// The buttons ask the server (screenpop/consult_api.py), which decides whether this operator owns
// the call; what the page then shows comes from Asterisk's events only (call_update "hold" and
// "consult", and "transferred"): a request accepted is not yet a call on hold.

import { api } from './api.js';
import { $, showText } from './dom.js';
import { state } from './state.js';

let departmentName = (code) => code;
// After Asterisk accepted a request, its event should follow within moments (the consult leg
// appears at once, before the department answers); if none does, the keys were lost: say so.
const EXPECT_MS = 8000;
let expected = null;  // { kind: 'hold' | 'consult' | 'transferred', timer }
const seen = {};  // kind -> when its last update arrived (it may come before the HTTP answer)

/** How a department extension (201) is named on the screen: set by call.js (transferTargetName). */
export function setDepartmentNamer(fn) { departmentName = fn; }

function say(text) { $('call-control-state').textContent = text; }

/** The fields this panel keeps on state.call, from a pop (restored after a reload too). */
export function initCallControls(call, pop) {
  call.onHold = !!pop.on_hold;
  call.consult = pop.consult_extension || null;
  call.controlBusy = false;
  say(call.consult ? `相談中: ${departmentName(call.consult)}（市民は保留中です）`
    : call.onHold ? '保留中（市民は保留音を聞いています）' : '');
  showText('call-control-error', '');
}

export function renderCallControls() {
  const call = state.call;
  const live = !!call && call.live !== false;
  const idle = live && !call.controlBusy;
  const open = live && call.office_open !== false;
  $('hold-btn').disabled = !(idle && !call.onHold && !call.consult);
  $('resume-btn').disabled = !(idle && call.onHold && !call.consult);
  $('consult-btn').disabled = !(idle && open && !call.onHold && !call.consult);
  $('consult-complete-btn').disabled = !(idle && open && call.consult);
  $('consult-cancel-btn').disabled = !(idle && call.consult);
  // the blind transfer waits while the citizen is on hold or a consult is up
  if (live && (call.onHold || call.consult)) $('transfer-btn').disabled = true;
}

/** A call_update "hold" or "consult" of the current call (Asterisk's events, via the tracker). */
export function onControlUpdate(msg) {
  const call = state.call;
  const detail = msg.detail || {};
  seen[msg.event] = Date.now();
  if (expected && expected.kind === msg.event) { clearTimeout(expected.timer); expected = null; }
  if (msg.event === 'hold') {
    call.onHold = !!detail.on_hold;
    if (!call.consult) say(call.onHold ? '保留中（市民は保留音を聞いています）' : '保留を解除しました。市民と通話中です');
  } else if (detail.state === 'started') {
    call.consult = detail.extension || '?';
    say(`相談中: ${departmentName(call.consult)}（市民は保留中です）。転送完了か取消を選んでください`);
  } else {
    const where = departmentName(call.consult || detail.extension || '');
    call.consult = null;
    say(`${where}との相談を終えました。市民との通話に戻りました`);
  }
}

/** The call was transferred or ended: nothing to hold or consult any more. */
export function endCallControls(text) {
  seen.transferred = Date.now();
  if (expected) { clearTimeout(expected.timer); expected = null; }
  if (!state.call) return;
  state.call.onHold = false;
  state.call.consult = null;
  say(text);
}

function expect(kind, call, before, busyText, after) {
  if (expected) clearTimeout(expected.timer);
  expected = { kind, timer: setTimeout(() => {
    expected = null;
    if (state.call !== call) return;
    if ($('call-control-state').textContent === busyText) say(before);
    showText('call-control-error', '電話機の状態が変わりませんでした。もう一度お試しください');
    after();
  }, EXPECT_MS) };
}

async function request(path, body, busyText, after, kind) {
  const call = state.call;
  if (!call) return;
  call.controlBusy = true;
  const before = $('call-control-state').textContent;
  say(busyText);
  showText('call-control-error', '');
  after();
  const sent = Date.now();
  try {
    await api('POST', `/api/operator/calls/${encodeURIComponent(call.call_id)}/${path}`, body);
    if (!((seen[kind] || 0) >= sent)) expect(kind, call, before, busyText, after);
  } catch (err) {
    if ($('call-control-state').textContent === busyText) say(before);
    showText('call-control-error', err.message);
  }
  call.controlBusy = false;
  if (state.call === call) after();
}

export function bindCallControls(render) {
  $('hold-btn').addEventListener('click', () => request('hold', undefined, '保留しています…', render, 'hold'));
  $('resume-btn').addEventListener('click',
    () => request('resume', undefined, '保留を解除しています…', render, 'hold'));
  $('consult-btn').addEventListener('click', () => {
    const department = $('transfer-dept').value;
    if (!department) { showText('call-control-error', '相談先の課を「転送先の課」で選んでください'); return; }
    request('consult', { department }, '相談先を呼び出しています…（市民は保留になります）', render, 'consult');
  });
  // completing ends in call_update "transferred" (endCallControls), cancelling in "consult" ended
  $('consult-complete-btn').addEventListener('click',
    () => request('consult/complete', undefined, '転送しています…', render, 'transferred'));
  $('consult-cancel-btn').addEventListener('click',
    () => request('consult/cancel', undefined, '相談を取り消しています…', render, 'consult'));
}
