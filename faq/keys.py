"""The FAQ's typed application keys."""

from __future__ import annotations

from aiohttp import web

from faq.service import FaqService

FAQ: web.AppKey[FaqService] = web.AppKey("faq", FaqService)
