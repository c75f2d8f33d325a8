// The one JSON client of every page (operator, department, supervisor): served at /static/api.js.
// Every state-changing request carries the X-CSRF-Token header; errors carry the server's Japanese
// message and the field it names. Personal data goes in request bodies only, never in URLs;
// nothing here logs to the console.

export const $ = (id) => document.getElementById(id);

let csrfToken = null;
// A 401 (the session ended): the staff pages go to the login page; the operator page sets its own.
let onUnauthorized = () => { location.href = '/login'; };

/** The session's CSRF token (from GET /api/me or the login answer); null after logout. */
export function setCsrfToken(token) { csrfToken = token; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, code, message, field, errors) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
    // every field error of a form at once (422): [{field, message}]; else just the first
    this.errors = errors || (field ? [{ field, message }] : []);
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function api(method, path, body, extraHeaders) {
  const headers = { Accept: 'application/json', ...(extraHeaders || {}) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (STATE_CHANGING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'サーバーに接続できません。ネットワークを確認してください。');
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!response.ok) {
    // {"error": {"code","message","field"}} (the APIs) or {"error": code, "message"} (login, access)
    let code = 'http_' + response.status, message = `エラーが発生しました（${response.status}）`, field = null;
    if (data && typeof data.error === 'object' && data.error) {
      code = data.error.code || code; message = data.error.message || message; field = data.error.field || null;
    } else if (data) {
      code = data.error || code; message = data.message || (typeof data.error === 'string' ? data.error : message);
    }
    const errors = data && Array.isArray(data.errors) ? data.errors : null;
    const err = new ApiError(response.status, code, message, field, errors);
    if (response.status === 401 && path !== '/api/login') onUnauthorized(err);
    throw err;
  }
  return data;
}

/** A status line: the text, styled ok or error. */
export function say(id, text, kind = 'ok') { const el = $(id); el.textContent = text; el.className = `message ${kind}`; }
