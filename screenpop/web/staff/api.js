// Shared by the department and supervisor screens: JSON calls with the CSRF token, errors that
// carry the server's Japanese message and the field it names, and a status line helper.

export const $ = (id) => document.getElementById(id);

let csrf = null;

/** The session's CSRF token, sent with every state-changing request (from GET /api/me). */
export function setCsrf(token) { csrf = token; }

export class ApiError extends Error {
  constructor(status, message, field) { super(message); this.status = status; this.field = field; }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const resp = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (resp.status === 401) { location.href = '/login'; throw new ApiError(401, 'ログインしてください'); }
  if (!resp.ok) {
    const err = data && data.error;
    const message = (err && err.message) || (data && data.message) || `エラー（${resp.status}）`;
    throw new ApiError(resp.status, message, err && err.field);
  }
  return data;
}

export function say(id, text, kind = 'ok') { const el = $(id); el.textContent = text; el.className = `message ${kind}`; }
