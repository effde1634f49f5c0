"""The simulated Stripe API as one platform's key sees it, in Stripe's JSON.

``/v1/accounts`` (create, list, retrieve, update), ``/v1/account_links``,
``/v1/webhook_endpoints`` (``endpoints``) and ``/v1/payouts`` on a
connected account (``payouts``, Stripe's ``Stripe-Account`` header):
Stripe's parameters in (nested dicts, as the HTTP server decodes them),
Stripe's objects out, Stripe's refusals as ``onboarding_fsm.errors``
exceptions (their bodies in ``errors.failure_body``). An account belongs to
the platform that created it; any other key — and its own after a
deauthorization — gets Stripe's 403 ``account_invalid``, as for an account
that does not exist. POSTs honour idempotency keys (``idempotency``). The
HTTP server and the in-process gateway both call this, so both answer alike.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from onboarding_fsm.errors import StripeFailure

from . import catalog, checks, endpoints, payouts
from .errors import failure_body, failure_from, invalid, refused_by_validation
from .idempotency import Answer, fingerprint
from .model import SimAccount, flatten
from .platforms import Platform, inaccessible
from .state import SimLink, SimState

#: update parameters Stripe stops the platform from changing once an Account
#: Link (or Session) exists, where Stripe collects requirements ("Once you create
#: an Account Link or Account Session, this property can only be updated for
#: accounts where controller.requirement_collection is application": OpenAPI,
#: ``POST /v1/accounts/{account}``); ``documents`` carries no such rule
LOCKED_AFTER_LINK = frozenset({"business_type", "company", "external_account", "individual"})
#: what "can only be updated for accounts where controller.requirement_collection
#: is application" — at any time, link or not
PLATFORM_COLLECTED_ONLY = frozenset({"tos_acceptance"})


class StripeApi:
    def __init__(self, state: SimState, platform: Platform) -> None:
        self._state = state
        self.platform = platform

    # --- plumbing ------------------------------------------------------------------

    def _posted(
        self,
        path: str,
        params: Mapping[str, Any],
        key: str | None,
        execute: Callable[[], dict[str, Any]],
        *,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """Run a POST once per idempotency key (per connected account, for a
        request made with ``Stripe-Account``); replay its answer (or refusal) after."""
        s = self._state
        if not key:
            with s.lock:
                return execute()
        first: list[StripeFailure] = []

        def run() -> Answer:
            try:
                return Answer(200, json.dumps(execute()).encode())
            except StripeFailure as exc:
                if refused_by_validation(exc):
                    raise  # execution never began: nothing is stored
                first.append(exc)
                return Answer(exc.http_status or 400, json.dumps(failure_body(exc)).encode())

        with s.lock:
            scope = self.platform.name if on_behalf_of is None else f"{self.platform.name}/{on_behalf_of}"
            answer, _ = s.idempotency.run(scope, key, fingerprint("POST", path, params), s.now(), run)
        if first:
            raise first[0]
        body: dict[str, Any] = json.loads(answer.body)
        if answer.status != 200:
            raise failure_from(answer.status, body)
        return body

    def _mine(self, account_id: str) -> SimAccount:
        """The account if this platform's key may see it, else Stripe's 403."""
        acct = self._state.accounts.get(account_id)
        if acct is None or acct.platform != self.platform.name or acct.deauthorized:
            raise inaccessible(self.platform, account_id)
        return acct

    # --- the endpoints ---------------------------------------------------------------

    def create_account(self, params: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/accounts``."""
        with self._state.lock:
            self._state.calls["create_account"] += 1
        return self._posted("/v1/accounts", params, idempotency_key, lambda: self._create(params))

    def _create(self, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self._state
        checks.known(params, checks.CREATE_PARAMS)
        country = checks.country(params)
        legacy, controller = checks.controller(params)
        capabilities = checks.capabilities(params)
        checks.capabilities_required(controller, capabilities)
        business_type = checks.business_type(params.get("business_type"), country)
        values = flatten({k: v for k, v in params.items() if k in checks.PREFILL})
        checks.integers(values)
        checks.external_account(values)
        # neither a country nor capabilities (so a dashboard account): the holder may choose the country
        country_open = not params.get("country") and not capabilities
        if not capabilities and controller["stripe_dashboard"]["type"] in ("express", "full"):
            capabilities = list(catalog.DEFAULT_CAPABILITIES)  # Stripe requests them for dashboard accounts
        acct = SimAccount(
            id=s.new_id("acct_"),
            created=s.now(),
            country=country,
            business_type=business_type,
            legacy_type=legacy,
            controller=controller,
            capabilities=tuple(capabilities),
            metadata={str(k): str(v) for k, v in (params.get("metadata") or {}).items() if v not in ("", None)},
            email=params.get("email"),
            platform=self.platform.name,
            country_open=country_open,
        )
        s.apply_values(acct, values, s.now())
        s.accounts[acct.id] = acct
        return s.remember(acct)

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        """``GET /v1/accounts/{id}``."""
        s = self._state
        with s.lock:
            s.evaluate()
            return s.render(self._mine(account_id))

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/accounts/{id}``: where Stripe collects requirements, the
        business type, company, individual and bank account lock once a link
        was created, and the terms-of-service acceptance is never the platform's."""
        with self._state.lock:
            self._state.calls["update_account"] += 1
        rendered = self._posted(
            f"/v1/accounts/{account_id}", params, idempotency_key, lambda: self._update(account_id, params)
        )
        self._state.after_change()
        return rendered

    def _update(self, account_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self._state
        s.evaluate()
        acct = self._mine(account_id)
        if acct.deleted:
            raise inaccessible(self.platform, account_id)
        checks.known(params, checks.UPDATE_PARAMS)
        values = flatten({k: v for k, v in params.items() if k in (*checks.PREFILL, "business_type")})
        checks.integers(values)
        checks.external_account(values)
        if "business_type" in values:
            checks.business_type(values["business_type"], acct.country)
        _refuse_locked(acct, params)
        requested = checks.capabilities(params)
        if requested:
            acct.country_open = False  # requesting capabilities fixes the country
        for name in requested:
            if name not in acct.capabilities:
                acct.capabilities = (*acct.capabilities, name)
        if params.get("email") is not None:
            acct.email = str(params["email"]) or None
        metadata = params.get("metadata")
        if metadata == "":
            acct.metadata.clear()
        for key, value in (metadata or {}).items() if isinstance(metadata, Mapping) else ():
            if value in ("", None):
                acct.metadata.pop(str(key), None)
            else:
                acct.metadata[str(key)] = str(value)
        s.apply_values(acct, values, s.now())
        s.publish(acct)
        return s.render(acct)

    def list_accounts(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET /v1/accounts``: this platform's accounts, newest first, with
        Stripe's cursors (``ending_before`` walks backwards) and ``created`` range."""
        s = self._state
        query = checks.list_query(params or {})
        with s.lock:
            s.calls["list_accounts"] += 1
            s.evaluate()
            # newest first; within one second, the later created first (a stable sort of the reversed creation order)
            ordered = sorted(
                (
                    a
                    for a in reversed(s.accounts.values())
                    if a.platform == self.platform.name and not a.deleted and not a.deauthorized
                    if query.admits(a.created)
                ),
                key=lambda a: a.created,
                reverse=True,
            )
            page, has_more = query.page(ordered, [a.id for a in ordered], "account")
            return {"object": "list", "data": [s.render(a) for a in page], "has_more": has_more, "url": "/v1/accounts"}

    def create_account_link(self, params: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/account_links``."""
        with self._state.lock:
            self._state.calls["create_account_link"] += 1
        return self._posted("/v1/account_links", params, idempotency_key, lambda: self._link(params))

    def _link(self, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self._state
        s.evaluate()
        link_params = checks.link_params(params)
        acct = self._mine(str(params["account"]))
        if acct.deleted:
            raise inaccessible(self.platform, acct.id)
        if link_params.type.value == "account_update" and not (
            acct.requirement_collection == "application" and acct.dashboard == "none"
        ):
            raise invalid(
                "You cannot create `account_update` type Account Links for accounts where Stripe collects "
                "requirements or that have access to a Stripe-hosted dashboard.",
                "type",
            )
        if acct.rejected:
            raise invalid("This account has been rejected and cannot be onboarded.", "account", "account_invalid")
        now = s.now()
        link = SimLink(
            token=secrets.token_urlsafe(24),
            account_id=acct.id,
            params=link_params,
            refresh_url=str(params["refresh_url"]),
            return_url=str(params["return_url"]),
            created=now,
            expires_at=now + s.link_ttl,
        )
        s.links[link.token] = link
        acct.linked = True
        return {
            "object": "account_link",
            "created": link.created,
            "expires_at": link.expires_at,
            "url": f"{s.hosted_base_url}/setup/s/{link.token}",
        }

    # --- payouts on a connected account (``payouts``) ---------------------------------

    def create_payout(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/payouts`` with ``Stripe-Account: account_id``."""
        with self._state.lock:
            self._state.calls["create_payout"] += 1
        answer = self._posted(
            "/v1/payouts", params, idempotency_key, lambda: self._payout(account_id, params), on_behalf_of=account_id
        )
        self._state.after_change()
        return answer

    def _payout(self, account_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self._state
        s.evaluate()
        acct = self._mine(account_id)
        if acct.deleted:
            raise inaccessible(self.platform, account_id)
        return payouts.create(s, acct, payouts.request(params))

    def retrieve_payout(self, account_id: str, payout_id: str) -> dict[str, Any]:
        """``GET /v1/payouts/{id}`` with ``Stripe-Account: account_id``."""
        with self._state.lock:
            acct = self._mine(account_id)
            if acct.deleted:
                raise inaccessible(self.platform, account_id)
            return payouts.retrieve(self._state, acct, payout_id)

    # --- webhook endpoints (``endpoints``) -------------------------------------------

    def create_webhook_endpoint(
        self, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/webhook_endpoints``."""
        s = self._state
        return self._posted(
            "/v1/webhook_endpoints",
            params,
            idempotency_key,
            lambda: endpoints.create(s.endpoints, self.platform, params, s.now(), s.outbox.secret),
        )

    def list_webhook_endpoints(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET /v1/webhook_endpoints``."""
        with self._state.lock:
            return endpoints.listing(self._state.endpoints, self.platform, params or {})

    def retrieve_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``GET /v1/webhook_endpoints/{id}``."""
        with self._state.lock:
            return endpoints.retrieve(self._state.endpoints, self.platform, endpoint_id)

    def update_webhook_endpoint(
        self, endpoint_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/webhook_endpoints/{id}``."""
        path = f"/v1/webhook_endpoints/{endpoint_id}"
        return self._posted(
            path,
            params,
            idempotency_key,
            lambda: endpoints.update(self._state.endpoints, self.platform, endpoint_id, params),
        )

    def delete_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """``DELETE /v1/webhook_endpoints/{id}``."""
        with self._state.lock:
            return endpoints.delete(self._state.endpoints, self.platform, endpoint_id)


def _refuse_locked(acct: SimAccount, params: Mapping[str, Any]) -> None:
    """Stripe's refusal of what the platform may not change on ``acct`` now."""
    if acct.requirement_collection != "stripe":
        return  # the platform collects requirements: it may update anything
    never = sorted(PLATFORM_COLLECTED_ONLY & set(params))
    if never:
        raise invalid(
            f"This account's {never[0]} can only be updated by platforms that collect requirements "
            "(controller.requirement_collection=application); here the holder provides it to Stripe.",
            never[0],
            "account_locked",
        )
    locked = sorted(LOCKED_AFTER_LINK & set(params)) if acct.linked else []
    if locked:
        raise invalid(
            f"This account's {locked[0]} can no longer be changed by the platform (an Account Link was "
            "created and Stripe collects its requirements); the holder must update it.",
            locked[0],
            "account_locked",
        )
