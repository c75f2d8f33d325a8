// What the operator page knows right now, shared by its panels (one object, no framework).

export const state = {
  me: null,
  config: null,
  hub: null,
  call: null,          // the current pop (the wire model screenpop.messages.Pop) plus local flags
  pendingPop: null,    // a pop that arrived while a form of the current call was being filled in
  callbackKey: null,   // the Idempotency-Key of the callback form's 保存 (kept until the form is reset)
  presence: null,      // the last presence message about me (screenpop.messages.Presence)
  faqUsed: new Set(),
  faqTimer: null,
  faqSeq: 0,
  faqPending: null,
  openAnswerId: null,
  today: new Map(),    // call_id -> row
  officeOpen: null,
};

export const OUTCOME_TEXT = {
  resolved: '解決', transferred: '転送', callback_requested: '折り返し依頼', declined: '記録を辞退', unanswered: '回答できず',
};
export const CATEGORY_LABELS = {
  koseki: '戸籍・住民票', zei: '税', hoken: '保険・年金', gomi: 'ごみ・リサイクル', kosodate: '子育て', other: 'その他',
};
export const DEFAULT_FAQ_CREDIT = '出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）';

export function categoryLabel(pop) {
  if (pop.category_label) return pop.category_label;
  if (!pop.category) return '未選択';
  return CATEGORY_LABELS[pop.category] || 'その他';
}

export function faqCredit() {
  return (state.config && state.config.faq_credit) || DEFAULT_FAQ_CREDIT;
}
