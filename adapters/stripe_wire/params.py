"""Engine requests in Stripe's parameter shapes (shared by every gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from onboarding_fsm.account import LinkRequest, NewAccount
from onboarding_fsm.snapshot import PLATFORM_REF_KEY


def account_list(limit: int, starting_after: str | None, created_gte: datetime | None) -> dict[str, Any]:
    """``GET /v1/accounts``: cursor and Stripe's ``created[gte]`` filter."""
    params: dict[str, Any] = {"limit": limit}
    if starting_after:
        params["starting_after"] = starting_after
    if created_gte is not None:
        params["created"] = {"gte": int(created_gte.timestamp())}
    return params


def account_create(new: NewAccount) -> dict[str, Any]:
    """``POST /v1/accounts``: pre-fill first, then what the engine owns."""
    params: dict[str, Any] = dict(new.prefill)
    if new.country is not None:  # else Stripe defaults it and the holder may choose another
        params["country"] = new.country
    if new.capabilities:
        params["capabilities"] = {name: {"requested": True} for name in new.capabilities}
    params["metadata"] = {PLATFORM_REF_KEY: new.platform_ref}
    if new.controller is not None:
        params["controller"] = dict(new.controller)
    if new.type is not None:
        params["type"] = new.type
    if new.business_type is not None:
        params["business_type"] = new.business_type
    return params


def account_link(request: LinkRequest) -> dict[str, Any]:
    """``POST /v1/account_links``."""
    return {
        "account": request.account_id,
        "type": request.params.type.value,
        "refresh_url": request.refresh_url,
        "return_url": request.return_url,
        "collection_options": {
            "fields": request.params.fields.value,
            "future_requirements": request.params.future_requirements.value,
        },
    }
