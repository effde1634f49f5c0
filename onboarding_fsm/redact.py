"""Identity data never reaches the database or the logs.

This is an allow-list, not a deny-list: only the fields the engine needs
survive (requirement *names*, flags, capability statuses, controller), so a
new identity-bearing field Stripe adds tomorrow is dropped by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .snapshot import PLATFORM_REF_KEY

_ACCOUNT_KEYS = frozenset(
    {
        "id",
        "object",
        "livemode",
        "country",
        "type",
        "business_type",
        "controller",
        "capabilities",
        "charges_enabled",
        "payouts_enabled",
        "details_submitted",
        "requirements",
        "future_requirements",
        "deleted",
        "created",
    }
)
_CAPABILITY_KEYS = frozenset(
    {"id", "object", "account", "status", "requested", "requested_at", "requirements", "future_requirements"}
)
_APPLICATION_KEYS = frozenset({"id", "object", "name"})
_EVENT_KEYS = frozenset({"id", "object", "type", "created", "livemode", "account", "api_version", "pending_webhooks"})


def _pick(data: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in keys}


def _without_error_text(requirements: Mapping[str, Any]) -> dict[str, Any]:
    """``errors[].reason`` is Stripe's free text and can quote identity data: keep code and requirement."""
    out = dict(requirements)
    errors = out.get("errors")
    if isinstance(errors, list):
        out["errors"] = [
            {k: e[k] for k in ("code", "requirement") if k in e} if isinstance(e, Mapping) else e for e in errors
        ]
    return out


def strip_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    kind = obj.get("object")
    if kind == "account":
        out = _pick(obj, _ACCOUNT_KEYS)
        for key in ("requirements", "future_requirements"):
            if isinstance(out.get(key), Mapping):
                out[key] = _without_error_text(out[key])
        metadata = obj.get("metadata")
        if isinstance(metadata, Mapping) and PLATFORM_REF_KEY in metadata:
            out["metadata"] = {PLATFORM_REF_KEY: metadata[PLATFORM_REF_KEY]}
        return out
    if kind == "capability":
        return _pick(obj, _CAPABILITY_KEYS)
    if kind == "application":
        return _pick(obj, _APPLICATION_KEYS)
    return _pick(obj, frozenset({"id", "object"}))


def strip_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as it may be stored in the inbox: envelope, the allow-listed
    object, and the *names* of the fields ``previous_attributes`` lists."""
    out = _pick(event, _EVENT_KEYS)
    request = event.get("request")
    if isinstance(request, Mapping):
        out["request"] = {"id": request.get("id")}
    data = event.get("data")
    if isinstance(data, Mapping):
        stored: dict[str, Any] = {}
        obj = data.get("object")
        if isinstance(obj, Mapping):
            stored["object"] = strip_object(obj)
        previous = data.get("previous_attributes")
        if isinstance(previous, Mapping):
            # which top-level fields changed; their old values may be identity data
            stored["changed"] = sorted(str(k) for k in previous)
        out["data"] = stored
    return out
