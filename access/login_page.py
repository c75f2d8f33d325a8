"""The one login screen of cti (GET /login): a plain Japanese form, no script, posting to /api/login.

Every page that needs a login sends the browser here (the operator page with ``?m=expired`` when its
session ended, ``?m=logged_out`` after logging out). ``m`` picks one of the fixed notices below;
nothing from the query string is ever written into the page.
"""

from __future__ import annotations

import html

from aiohttp import web

NOTICES = {
    "expired": "セッションの有効期限が切れました。再度ログインしてください。",
    "logged_out": "ログアウトしました。",
    "login": "ログインしてください。",
}

LOGIN_PAGE = """<!doctype html>
<html lang="ja">
<head><meta charset="utf-8"><title>ログイン - CTI</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; margin: 0;
       background: #f4f5f7; color: #1a1a1a; }
main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: .5rem;
       box-shadow: 0 1px 3px rgba(0,0,0,.15); }
label { display: block; font-weight: bold; margin-bottom: .25rem; }
input { width: 100%; box-sizing: border-box; font-size: 1rem; padding: .5rem; }
button { font-size: 1rem; padding: .5rem 1.5rem; }
.error { color: #b00020; font-weight: bold; }
.notice { color: #1a4b8c; }
</style></head>
<body>
<main>
<h1>ログイン</h1>
{notice}<form method="post" action="/api/login">
<p><label for="user_id">ユーザーID</label>
<input id="user_id" name="user_id" autocomplete="username" required autofocus maxlength="64"></p>
<p><label for="password">パスワード</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"></p>
<p><button type="submit">ログイン</button></p>
</form>
</main>
</body>
</html>
"""

_HEADERS = {"Cache-Control": "no-store"}


def render(error: str | None = None, notice: str | None = None, status: int = 200,
           headers: dict[str, str] | None = None) -> web.Response:
    """The form, with an error (role=alert) or a notice above it."""
    block = ""
    if error:
        block = f'<p id="login-error" role="alert" class="error">{html.escape(error)}</p>\n'
    elif notice:
        block = f'<p id="login-notice" role="status" class="notice">{html.escape(notice)}</p>\n'
    return web.Response(
        text=LOGIN_PAGE.replace("{notice}", block),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**_HEADERS, **(headers or {})},
    )


def notice_for(request: web.Request) -> str | None:
    return NOTICES.get(request.query.get("m", ""))
