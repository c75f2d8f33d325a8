// FAQ editor: gaps -> draft -> publish, entries and their versions, synonyms. Text goes into the
// page with textContent only.

import { api, setCsrfToken, setUnauthorizedHandler } from '/static/api.js';
import { mountNav } from '/static/nav.js';

const $ = (id) => document.getElementById(id);

let currentGap = null; // {kind, id} the draft answers
let currentDraft = null; // {id, version} of the last saved draft

function say(text, kind = 'ok') { const el = $('message'); el.textContent = text; el.className = `message ${kind}`; }

function node(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

function fmt(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString('ja-JP', { timeZone: 'Asia/Tokyo', year: 'numeric', month: 'numeric',
    day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function button(text, onClick, cls = '') {
  const b = node('button', { type: 'button', class: cls }, text);
  b.addEventListener('click', onClick);
  return b;
}

async function guard(fn) {
  try { await fn(); } catch (err) {
    say(err.message, 'error');
    if (err.field) { const f = $(`f-${err.field}`); if (f) f.focus(); }
  }
}

// ---- gaps ---------------------------------------------------------------------------------------

async function loadGaps() {
  const answered = $('gaps-answered').checked ? '?answered=true' : '';
  const data = await api('GET', `/api/faq/editor/gaps${answered}`);
  const list = $('gaps');
  list.replaceChildren(...data.items.map((gap) => {
    const head = node('div', {}, node('span', { class: 'badge-kind' }, gap.kind_label),
      `${gap.category_label}　${fmt(gap.created_at)}`);
    const li = node('li', { 'data-gap': `${gap.kind}-${gap.id}` }, head, node('p', { class: 'gap-text' }, gap.text));
    if (gap.answered) li.append(node('span', { class: 'answered' }, `回答済み（FAQ ${gap.entry}）`));
    else li.append(button('このFAQ不足から下書きを作る', () => draftFromGap(gap)));
    return li;
  }));
  $('gaps-count').textContent = `（${data.items.length}件）`;
  $('gaps-unavailable').textContent = data.unavailable.length ? `取得できなかったもの: ${data.unavailable.join('、')}` : '';
  const report = await api('GET', '/api/faq/editor/gaps/report');
  $('report').querySelector('tbody').replaceChildren(...report.rows.map((r) =>
    node('tr', {}, node('td', {}, r.week), node('td', {}, r.category), node('td', {}, String(r.total)),
      node('td', {}, String(r.answered)))));
}

function draftFromGap(gap) {
  clearForm();
  currentGap = { kind: gap.kind, id: gap.id };
  $('form-gap').hidden = false;
  $('form-gap').textContent = `元のFAQ不足（${gap.kind_label}）:\n${gap.text}`;
  // The draft starts from what the gap says (the department's answer, for a callback): the editor
  // rewrites it as public text, without anything personal.
  $('f-question').value = gap.question_hint || '';
  $('f-answer').value = gap.answer_hint || '';
  if (gap.category_label && gap.category_label !== '未分類') $('f-category').value = gap.category_label;
  $('form-target').textContent = '（新しいFAQ）';
  $('f-question').focus();
}

// ---- the form -----------------------------------------------------------------------------------

function clearForm() {
  for (const id of ['f-id', 'f-question', 'f-answer', 'f-category', 'f-subcategory', 'f-keywords']) $(id).value = '';
  currentGap = null; currentDraft = null;
  $('form-gap').hidden = true;
  $('publish-now').disabled = true;
  $('form-target').textContent = '（新しいFAQ）';
  $('history').replaceChildren();
}

function fill(entry) {
  $('f-id').value = entry.id;
  $('f-question').value = entry.question;
  $('f-answer').value = entry.answer;
  $('f-category').value = entry.category;
  $('f-subcategory').value = entry.subcategory || '';
  $('f-keywords').value = (entry.keywords || []).join('\n');
  $('form-target').textContent = `（FAQ ${entry.id}）`;
}

async function saveDraft(event) {
  event.preventDefault();
  const body = {
    id: $('f-id').value || null,
    question: $('f-question').value,
    answer: $('f-answer').value,
    category: $('f-category').value,
    subcategory: $('f-subcategory').value || null,
    // one per line: the server splits them (faq/entries.py split_keywords; 、 stays in a phrasing)
    keywords: $('f-keywords').value,
    gap: currentGap,
  };
  const saved = await api('POST', '/api/faq/editor/drafts', body);
  currentDraft = { id: saved.id, version: saved.version };
  $('f-id').value = saved.id;
  $('form-target').textContent = `（FAQ ${saved.id}・第${saved.version}版 下書き）`;
  $('publish-now').disabled = false;
  say(`下書きを保存しました（FAQ ${saved.id} 第${saved.version}版）`);
  await Promise.all([loadDrafts(), loadHistory(saved.id)]);
}

async function publish(id, version) {
  await api('POST', `/api/faq/editor/entries/${encodeURIComponent(id)}/versions/${version}/publish`, {});
  say(`公開しました（FAQ ${id} 第${version}版）。オペレーターの検索にすぐ反映されます。`);
  if (currentDraft && currentDraft.id === id) { $('publish-now').disabled = true; currentGap = null; $('form-gap').hidden = true; }
  await Promise.all([loadDrafts(), loadGaps(), loadHistory(id)]);
}

async function loadHistory(id) {
  const data = await api('GET', `/api/faq/editor/entries/${encodeURIComponent(id)}`);
  const label = { draft: '下書き', published: '公開', retired: '公開終了' };
  $('history').replaceChildren(...data.versions.map((v) => node('li', {},
    `第${v.version}版 ${label[v.status] || v.status}　${v.author} ${fmt(v.created_at)}`
    + (v.published_at ? `（公開 ${v.published_by} ${fmt(v.published_at)}）` : '') + `　${v.question}`)));
}

async function openEntry(id) {
  const data = await api('GET', `/api/faq/editor/entries/${encodeURIComponent(id)}`);
  clearForm();
  const latest = data.versions[0];
  fill(latest && latest.status === 'draft' ? latest : (data.live || latest));
  if (latest && latest.status === 'draft') { currentDraft = { id, version: latest.version }; $('publish-now').disabled = false; }
  await loadHistory(id);
  $('f-question').focus();
}

// ---- drafts, entries ----------------------------------------------------------------------------

async function loadDrafts() {
  const data = await api('GET', '/api/faq/editor/drafts');
  $('drafts').replaceChildren(...data.items.map((d) => node('li', {},
    `${d.question}（FAQ ${d.id} 第${d.version}版・${d.author}）`,
    button('開く', () => guard(() => openEntry(d.id))),
    button('公開', () => guard(() => publish(d.id, d.version)), 'primary'))));
  if (!data.items.length) $('drafts').append(node('li', { class: 'muted' }, '公開待ちの下書きはありません'));
}

async function find(event) {
  event.preventDefault();
  const q = $('find-q').value.trim();
  const data = await api('GET', `/api/faq/editor/entries?q=${encodeURIComponent(q)}`);
  $('found').replaceChildren(...data.items.map((e) => node('li', {}, `[${e.id}] ${e.question}`,
    button('編集', () => guard(() => openEntry(e.id))),
    button('公開終了', () => guard(async () => {
      if (!confirm(`FAQ ${e.id} の公開を終了しますか？`)) return;
      await api('POST', `/api/faq/editor/entries/${encodeURIComponent(e.id)}/retire`, {});
      say(`FAQ ${e.id} の公開を終了しました`);
      await find(new Event('submit'));
    })))));
}

// ---- synonyms -----------------------------------------------------------------------------------

async function loadSynonyms() {
  const data = await api('GET', '/api/faq/editor/synonyms');
  $('synonyms').replaceChildren(...data.editor.map((s) => node('li', {}, `${s.rule}（${s.author}）`,
    button('削除', () => guard(async () => {
      await api('DELETE', `/api/faq/editor/synonyms/${s.id}`);
      say('同義語を削除しました');
      await loadSynonyms();
    })))));
  $('shipped').replaceChildren(...data.shipped.map((r) => node('li', {}, r)));
}

async function addSynonym(event) {
  event.preventDefault();
  const added = await api('POST', '/api/faq/editor/synonyms', { rule: $('syn-rule').value });
  $('syn-rule').value = '';
  say(`同義語「${added.rule}」を追加しました。検索に反映されました。`);
  await loadSynonyms();
}

// ---- the ward's documents ---------------------------------------------------------------------

async function reimportDocuments() {
  const data = await api('POST', '/api/faq/editor/documents/reimport', {});
  $('docs-result').replaceChildren(...data.sources.map((s) => node('li', {},
    `${s.label}: 追加 ${s.added}・更新 ${s.updated}・削除 ${s.removed}・変更なし ${s.unchanged}`)));
  say(`資料を取り込みました（計 ${data.sections} 節）。検索に反映されました。`);
}

// ---- start --------------------------------------------------------------------------------------

async function start() {
  setUnauthorizedHandler(() => { location.href = '/login'; });
  const me = await api('GET', '/api/me');
  mountNav(me);
  setCsrfToken(me.csrf_token);
  $('who').textContent = me.display_name || me.user_id;
  $('logout').addEventListener('click', async () => { await api('POST', '/api/logout', {}); location.href = '/login'; });
  $('draft-form').addEventListener('submit', (e) => guard(() => saveDraft(e)));
  $('publish-now').addEventListener('click', () => guard(() => publish(currentDraft.id, currentDraft.version)));
  $('form-clear').addEventListener('click', clearForm);
  $('find-form').addEventListener('submit', (e) => guard(() => find(e)));
  $('syn-form').addEventListener('submit', (e) => guard(() => addSynonym(e)));
  $('gaps-reload').addEventListener('click', () => guard(loadGaps));
  $('docs-reimport').addEventListener('click', () => guard(reimportDocuments));
  $('gaps-answered').addEventListener('change', () => guard(loadGaps));
  const cats = ['ごみ・リサイクル', '住民票・戸籍・印鑑証明', '税金', '保険・年金', '保育', '子どもの手当・助成',
    '妊娠・出産', '健診・予防接種', '学校・教育', '施設', '防災・防犯', '暮らしに役立つ情報'];
  $('categories').replaceChildren(...cats.map((c) => node('option', { value: c })));
  clearForm();
  await Promise.all([guard(loadGaps), guard(loadDrafts), guard(loadSynonyms)]);
  document.body.dataset.ready = 'true';
}

start();
