"""Helpers for the department/supervisor browser tests: wire the supervisor package into the app
built by browser.build_operator_app (unless create_app already does), and make test records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from aiohttp import web

from cti import keys
from cti.core.principal import Principal, Role
from cti.gateway import migrate_sync
from records.models import CallbackIn, ConsentIn
from records.plugin import records_ctx
from screenpop.dispatcher import pop_ctx
from supervision import service as wiring_supervisor

OPERATOR = Principal("tanaka", Role.OPERATOR, None, "127.0.0.1")


def ensure_ctx(app: web.Application, ctx: Callable[[web.Application], AsyncIterator[None]]) -> None:
    """Add a telephony context unless create_app has it already: before its consumers (pops, wall)."""
    contexts = list(app.cleanup_ctx)
    if ctx in contexts:
        return
    consumers = [i for i, c in enumerate(contexts) if c in (pop_ctx, wiring_supervisor.supervisor_ctx)]
    app.cleanup_ctx.insert(min(consumers, default=len(contexts)), ctx)


def wire_supervisor(app: web.Application) -> None:
    if any(r.resource is not None and r.resource.canonical == "/api/supervisor/wall" for r in app.router.routes()):
        return  # create_app wires it already

    async def supervisor_migrations(app: web.Application) -> AsyncIterator[None]:
        migrations = wiring_supervisor.migrations()
        await app[keys.DATABASE].maintenance(lambda conn: migrate_sync(conn, migrations))
        yield

    # Migrate before any context that uses the tables (records' task).
    contexts = list(app.cleanup_ctx)
    first_user = next((i for i, c in enumerate(contexts) if c is records_ctx), len(contexts))
    app.cleanup_ctx.insert(first_user, supervisor_migrations)
    app.cleanup_ctx.append(wiring_supervisor.supervisor_ctx)
    wiring_supervisor.setup_routes(app)


async def create_handed_over_callback(app: web.Application, clock: object, department: str, phone: str,
                                      now: datetime) -> int:
    """A callback taken last Friday evening (office closed), handed over this morning."""
    service = app[keys.RECORDS]
    friday = now - timedelta(days=now.weekday() + 3) + timedelta(hours=9)  # the previous Friday, 19:00
    clock.at = friday  # type: ignore[attr-defined]
    call_id = f"e2e-{department}-{phone[-4:]}"
    await service.call_taken(call_id, OPERATOR.user_id, caller_number=phone)  # as when the tracker sees the answer
    await service.record_consent(OPERATOR, call_id, ConsentIn(answer="yes"))
    out = await service.create_callback(OPERATOR, call_id, CallbackIn(
        name="山田 花子", phone=phone, question="固定資産税の減免について", department=department))
    clock.at = now  # type: ignore[attr-defined]
    await service.hand_over_due(now)
    return int(out["id"])
