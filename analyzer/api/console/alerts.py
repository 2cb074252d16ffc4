"""The console's alerts page, ``/ui/alerts``: firing, pending and recently resolved chain alerts with
their chain, value against the threshold, since when, and an example trace; an open alert can be
resolved by hand with a note (``admin`` scope, a CSRF-checked form), as
``POST /api/v1/alerts/{alert_id}/resolve`` does.

The lists are the API's (:func:`chainotel_analyzer.api.monitoring.list_alerts`, called in-process),
so the page shows what ``GET /api/v1/alerts`` answers. ``?chain=B3`` shows one chain's.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from chainotel.catalog.models import CHAIN_ID_PATTERN
from chainotel.ids import format_instance_id

from chainotel_analyzer.api import monitoring as api
from chainotel_analyzer.api.console.auth import check_form, has_scope, read_form
from chainotel_analyzer.api.console.pages import _guarded, _render, error_page
from chainotel_analyzer.security.tokens import Scope

router = APIRouter(include_in_schema=False)

RESOLVED_SHOWN = 50
"""Resolved alerts listed (newest first)."""

_ALERT_ID = re.compile(r"^[0-9a-f]{32}$")


def _monitoring(request: Request):
    return request.app.state.services.monitoring


def _since(alert: dict) -> str | None:
    """When the alert entered its current state (RFC 3339)."""
    return {"firing": alert["fired_at"], "pending": alert["active_at"]}.get(alert["state"], alert["resolved_at"])


def _row(alert) -> dict:
    d = alert.model_dump()
    d["since"] = _since(d)
    d["trace_href"] = "/ui/traces/" + format_instance_id(int(d["trace_id"], 16)) if d["trace_id"] else None
    return d


@router.get("/ui/alerts", response_class=HTMLResponse)
@_guarded
def alerts_page(
    request: Request,
    chain: str | None = Query(None, description="Only this chain's alerts."),
    resolved: str | None = Query(None, description="The alert just resolved by hand (for the message)."),
) -> HTMLResponse:
    """Firing, pending and the latest resolved alerts, newest first in each list."""
    chain = chain or None
    if chain is not None and not re.fullmatch(CHAIN_ID_PATTERN, chain):
        raise HTTPException(422, f"chain: {chain!r} is not a chain ID (pattern {CHAIN_ID_PATTERN})")
    monitoring = _monitoring(request)
    if monitoring is None:
        raise HTTPException(503, "monitoring is not running in this analyzer process, so there are no alerts to show")
    lists = {
        state: [_row(a) for a in api.list_alerts(request, state, chain, limit, monitoring).alerts]
        for state, limit in (("firing", 500), ("pending", 500), ("resolved", RESOLVED_SHOWN))
    }
    chains = sorted(d["id"] for d in request.app.state.services.registry.list())
    return _render(
        "alerts.html", title="Alerts", path="/ui/alerts", tr=None, base_params={}, lists=lists, chain=chain,
        chains=chains, can_resolve=has_scope(request, Scope.ADMIN), resolved=resolved if resolved and
        _ALERT_ID.fullmatch(resolved) else None, resolved_shown=RESOLVED_SHOWN,
    )  # fmt: skip


@router.post("/ui/alerts/{alert_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, alert_id: str) -> Response:
    """Resolve an open alert with the form's ``note``; 303 back to the alerts page (Post/Redirect/Get)."""
    try:
        form = await read_form(request)
        check_form(request, form)
        if not has_scope(request, Scope.ADMIN):
            raise HTTPException(403, "resolving an alert needs a token with the 'admin' scope: log in with one")
        if not _ALERT_ID.fullmatch(alert_id):
            raise HTTPException(422, "alert_id: 32 hex digits, as the alerts page lists them")
        try:
            body = api.ResolveRequest(note=form.get("note", "").strip())
        except ValidationError:
            raise HTTPException(422, "note: say why the alert is resolved (1 to 2000 characters)") from None
        monitoring = _monitoring(request)
        if monitoring is None:
            raise HTTPException(503, "monitoring is not running in this analyzer process")
        await run_in_threadpool(api.resolve_alert, request, body, alert_id, monitoring)
    except HTTPException as exc:
        return error_page(exc)
    chain = form.get("chain", "")
    back = "/ui/alerts?" + (f"chain={chain}&" if re.fullmatch(CHAIN_ID_PATTERN, chain) else "") + f"resolved={alert_id}"
    return RedirectResponse(back, status_code=303)
