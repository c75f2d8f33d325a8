// FAQ search (Alt+2, "/"): as you type over the websocket (the words never go into a URL), HTTP
// only while the socket is down; an answer can be marked as used for the call's record.

import { api } from './api.js';
import { $, el, highlighted, showText } from './dom.js';
import { faqCredit, state } from './state.js';

const FAQ_DEBOUNCE_MS = 250;

/** A new call: nothing used yet; the search is cleared unless the operator is typing in it. */
export function resetFaqForCall() {
  state.faqUsed = new Set();
  if (document.activeElement === $('faq-q')) return;
  $('faq-q').value = '';
  $('faq-results').replaceChildren();
  $('faq-status').textContent = '';
  showText('faq-credit', '');
  closeAnswer(false);
}

export function onFaqInput() {
  clearTimeout(state.faqTimer);
  state.faqTimer = setTimeout(runFaqSearch, FAQ_DEBOUNCE_MS);
}

export async function runFaqSearch() {
  const q = $('faq-q').value.trim();
  const seq = ++state.faqSeq;
  if (!q) {
    $('faq-results').replaceChildren(); $('faq-status').textContent = ''; showText('faq-credit', '');
    return;
  }
  $('faq-status').textContent = '検索中…';
  state.faqPending = q;
  if (state.hub && state.hub.send({ type: 'faq_search', q })) return;
  try {
    const data = await api('GET', `/api/faq/search?limit=10&q=${encodeURIComponent(q)}`);
    if (seq === state.faqSeq) renderFaqResults([...data.results, ...(data.documents || [])], data.credit);
  } catch (err) {
    if (seq === state.faqSeq) $('faq-status').textContent = err.message;
  }
}

export function onFaqResults(msg) {
  if (msg.q !== state.faqPending || msg.q !== $('faq-q').value.trim()) return; // a newer query is on its way
  renderFaqResults(msg.results || [], null);
}

export function onFaqError(msg) { $('faq-status').textContent = msg.message; }

function renderFaqResults(results, credit) {
  const list = $('faq-results');
  closeAnswer(false);
  list.replaceChildren(...results.map((hit) => {
    const link = el('a', { href: '#', 'data-id': hit.id }, highlighted(hit.question, hit.question_highlights));
    link.addEventListener('click', (e) => { e.preventDefault(); openAnswer(hit.id); });
    // The ward's other sources (website, 広報, 暮らしのガイド) are listed after the FAQ, labelled.
    const source = hit.kind === 'document' ? el('span', { class: 'source' }, `［${hit.source}］`) : null;
    return el('li', { class: hit.kind === 'document' ? 'document' : '' }, source, link,
      el('p', { class: 'snippet' }, highlighted(hit.snippet, hit.snippet_highlights)));
  }));
  // Nothing close (the server marks each hit): say so, and offer to log the question for the FAQ editors.
  const weak = !results.some((hit) => hit.close !== false);
  state.faqGapQuery = weak ? $('faq-q').value.trim() : null;
  $('faq-gap').hidden = !weak;
  $('faq-gap').disabled = false;
  $('faq-gap').textContent = 'FAQ不足として記録';
  $('faq-status').textContent = weak ? '近い回答が見つかりません' : `${results.length}件`;
  showText('faq-credit', results.length ? (credit || faqCredit()) : '');
}

async function logFaqGap() {
  if (!state.faqGapQuery) return;
  try {
    const category = state.call && state.call.category ? state.call.category : null;
    await api('POST', '/api/faq/gaps', { query: state.faqGapQuery, category });
    $('faq-gap').textContent = '記録しました';
    $('faq-gap').disabled = true;
  } catch (err) {
    $('faq-status').textContent = err.message;
  }
}

export async function openAnswer(id) {
  try {
    const entry = await api('GET', `/api/faq/${encodeURIComponent(id)}`);
    state.openAnswerId = entry.id;
    $('faq-answer-q').textContent = entry.question;
    $('faq-answer-body').textContent = entry.answer;
    const link = $('faq-answer-link');
    link.hidden = !entry.url;
    link.href = entry.url || '#';
    link.textContent = entry.url ? `${entry.source}を開く` : '';
    $('faq-results').hidden = true;
    $('faq-answer').hidden = false;
    showText('faq-credit', entry.credit || faqCredit());
    $('faq-use').textContent = state.faqUsed.has(entry.id) ? '使用済み' : 'この回答を使用（記録）';
    $('faq-answer').focus();
  } catch (err) {
    $('faq-status').textContent = err.message;
  }
}

export function closeAnswer(focusList = true) {
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

export function bindFaq() {
  $('faq-q').addEventListener('input', onFaqInput);
  $('faq-q').addEventListener('keydown', onFaqKeyDown);
  $('faq-form').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(state.faqTimer); runFaqSearch(); });
  $('faq-results').addEventListener('keydown', onResultsKeyDown);
  $('faq-use').addEventListener('click', useAnswer);
  $('faq-gap').addEventListener('click', logFaqGap);
  $('faq-back').addEventListener('click', () => closeAnswer(true));
}
