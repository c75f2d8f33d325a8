"""The FAQ's typed application keys."""

from __future__ import annotations

from aiohttp import web

from faq.service import FaqService
from faq.settings import FaqSettings

FAQ: web.AppKey[FaqService] = web.AppKey("faq", FaqService)
SETTINGS: web.AppKey[FaqSettings] = web.AppKey("faq_settings", FaqSettings)
