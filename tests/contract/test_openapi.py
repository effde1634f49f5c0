"""Stripe's OpenAPI description is the judge: every answer the simulator gives
on the flows the engine uses — in process and over HTTP — and every request
the SDK adapter sends on them must conform to it (Stripe is the truth, not
the simulator). The description is Stripe's own, for API 2024-04-10
(``tests/data/stripe-openapi/``, see its SOURCE.md); ``$ref``s resolve
against the whole document; requests are form-encoded, so they are decoded
with the simulator's wire decoder and their strings read as the schema types
them before validation (openapi-schema-validator, on jsonschema/referencing).

The description is read strictly, in two ways:
* an object declares every field Stripe sends: a field it does not list
  (``livemode`` on an Account, say) is a violation — ``additionalProperties``
  is false wherever the description says nothing;
* ``nullable`` admits null also where an ``enum`` is given, and on a
  ``nullable`` ``anyOf`` with no ``type`` beside it (Stripe's way of writing a
  nullable ``$ref``): OAS 3.0.3 would refuse null there, yet Stripe answers
  ``business_type: null`` and ``support_address: null``, and Stripe is the truth.

A failure lists every violation: where (in process or over HTTP, the
request), the JSON path, and the message.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import stripe
from jsonschema.exceptions import ValidationError, best_match
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from adapters.http.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.errors import failure_body
from adapters.simulator.server import OTHER_TEST_KEY, TEST_KEY, SimulatorServer
from adapters.simulator.wire import decode
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock
from onboarding_fsm.account import LinkFields, LinkParams, LinkRequest, LinkType, NewAccount
from onboarding_fsm.errors import StripeFailure
from onboarding_fsm.ports import StripeGateway

SPEC_FILE = Path(__file__).resolve().parents[1] / "data" / "stripe-openapi" / "spec3-2024-04-10.json.gz"
BASE = "urn:stripe:openapi:2024-04-10"
FORM = "application/x-www-form-urlencoded"
#: the flows the engine uses, as the description names them
OPERATIONS = {("POST", "/v1/accounts"), ("GET", "/v1/accounts"), ("GET", "/v1/accounts/{account}"),
              ("POST", "/v1/accounts/{account}"), ("POST", "/v1/account_links"),
              # the self-check's (``onboarding-fsm doctor``), and how a set-up is made and broken
              ("GET", "/v1/webhook_endpoints"), ("POST", "/v1/webhook_endpoints"),
              ("GET", "/v1/webhook_endpoints/{webhook_endpoint}"), ("POST", "/v1/webhook_endpoints/{webhook_endpoint}"),
              ("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}"),
              # payouts on a connected account (``Stripe-Account``): how a platform meets a bad bank account
              ("POST", "/v1/payouts"), ("GET", "/v1/payouts/{payout}")}  # fmt: skip
EVENT_OBJECTS = {"account.updated": "account", "capability.updated": "capability",
                 "account.application.deauthorized": "application", "payout.created": "payout",
                 "payout.paid": "payout", "payout.failed": "payout",
                 "account.external_account.updated": "bank_account"}  # fmt: skip
#: marks a request the scenario sends wrong on purpose (Stripe must refuse it)
ON_PURPOSE = "X-Invalid-On-Purpose"


# --- the description ---------------------------------------------------------------


def _strict(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _strict(item)
        return
    if not isinstance(schema, dict):
        return
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            _strict(sub)
    if schema.get("nullable") is True and "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    for key in ("anyOf", "oneOf"):
        if schema.get("nullable") is True and "type" not in schema and key in schema:
            schema[key] = [*schema[key], {"enum": [None]}]
    for key in ("items", "not", "anyOf", "oneOf", "allOf"):
        _strict(schema.get(key))
    if isinstance(schema.get("additionalProperties"), dict):
        _strict(schema["additionalProperties"])


def _bank_dictionary(document: dict[str, Any]) -> None:
    """``external_account`` on the account endpoints is "a token, or a
    dictionary, as documented for bank account creation", yet typed a string
    (``x-stripeBypassValidation``): judge it by the token-or-dictionary schema
    the description gives that same parameter elsewhere (``bank_account`` on
    ``POST /v1/accounts``)."""
    bodies = [document["paths"][path]["post"]["requestBody"]["content"][FORM]["schema"]["properties"]
              for path in ("/v1/accounts", "/v1/accounts/{account}")]  # fmt: skip
    for properties in bodies:
        if properties["external_account"].get("x-stripeBypassValidation"):
            properties["external_account"] = bodies[0]["bank_account"]


@functools.cache
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(gzip.decompress(SPEC_FILE.read_bytes()))
    _bank_dictionary(document)
    for schema in document["components"]["schemas"].values():
        _strict(schema)
    for item in document["paths"].values():
        for op in item.values():
            for parameter in op.get("parameters", []) if isinstance(op, dict) else []:
                _strict(parameter.get("schema"))
            for media in (op.get("requestBody") or {}).get("content", {}).values():
                _strict(media.get("schema"))
            for response in op.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    _strict(media.get("schema"))
    return document


@functools.cache
def registry() -> Registry[Any]:
    return Registry().with_resource(BASE, Resource.from_contents(spec(), default_specification=DRAFT4))


def pointer(*parts: object) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def at(ref: str) -> Any:
    node: Any = spec()
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return at(node["$ref"]) if isinstance(node, dict) and "$ref" in node else node


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: inside an ``anyOf``, every error of
    the alternative that came closest (never "is not null" for a nullable one)."""
    if not error.context:
        yield error
        return
    tried = [e for e in error.context if e.validator_value != [None]] or list(error.context)
    branch = best_match(tried).relative_schema_path[0]
    for sub in tried:
        if sub.relative_schema_path[0] == branch:
            yield from _leaves(sub)


def violations(instance: Any, ref: str) -> list[str]:
    validator = OAS30Validator({"$ref": BASE + ref}, registry=registry(), format_checker=oas30_format_checker)
    return [f"{leaf.json_path}: {leaf.message}" for error in validator.iter_errors(instance) for leaf in _leaves(error)]


def template(path: str) -> str | None:
    for _, name in OPERATIONS:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", name), path):
            return name
    return None


# --- form values read as the schema types them ----------------------------------------------

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
                          "array": list}  # fmt: skip


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = _TYPES.get(schema.get("type", ""), object)
    return isinstance(value, kind) and not (isinstance(value, bool) and schema.get("type") in ("integer", "number"))


def coerce(value: Any, schema: Any) -> Any:
    """A decoded form value (strings, nested) as the JSON ``schema`` types it."""
    schema = at(schema["$ref"]) if "$ref" in schema else schema
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        for branch in branches:
            candidate = coerce(value, branch)
            if _fits(candidate, at(branch["$ref"]) if "$ref" in branch else branch):
                return candidate
        return value
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: coerce(v, properties.get(k, extra if isinstance(extra, dict) else {})) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce(v, schema.get("items", {})) for v in value]
    if isinstance(value, str):
        kind = schema.get("type")
        if kind == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
            return float(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    return value


# --- the judge -------------------------------------------------------------------------


@dataclass
class Judge:
    where: str
    found: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    def _report(self, what: str, problems: list[str]) -> None:
        """One line per violation; list positions folded (``data[*]``) so one fault reads as one."""
        self.found += [f"[{self.where}] {what}: " + re.sub(r"\[\d+\]", "[*]", p) for p in problems]

    def request(self, method: str, path: str, params: dict[str, Any]) -> None:
        name = template(path)
        assert name is not None, f"{method} {path} is not a flow this test knows"
        op = spec()["paths"][name][method.lower()]
        if method in ("GET", "DELETE"):
            declared = {p["name"]: i for i, p in enumerate(op.get("parameters", [])) if p["in"] == "query"}
            for key, value in params.items():
                if key not in declared:
                    self._report(f"request {method} {name}", [f"$.{key}: not a query parameter"])
                    continue
                ref = pointer("paths", name, "get", "parameters", declared[key], "schema")
                self._report(f"request {method} {name}", violations(coerce(value, at(ref)), ref))
            return
        ref = pointer("paths", name, method.lower(), "requestBody", "content", FORM, "schema")
        self._report(f"request {method} {name}", violations(coerce(params, at(ref)), ref))

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        name = template(path)
        assert name is not None, f"{method} {path} is not a flow this test knows"
        self.seen.add((method, name, status))
        code = "200" if status == 200 else "default"
        ref = pointer("paths", name, method.lower(), "responses", code, "content", "application/json", "schema")
        self._report(f"answer {status} to {method} {name}", violations(body, ref))

    def event(self, event: dict[str, Any]) -> None:
        self._report(f"event {event.get('type')}", violations(event, pointer("components", "schemas", "event")))
        kind = EVENT_OBJECTS.get(event.get("type", ""))
        if kind is None:
            self._report(f"event {event.get('type')}", ["$.type: not an event type this test knows"])
            return
        ref = pointer("components", "schemas", kind)
        self._report(f"event {event['type']} data.object", violations(event["data"]["object"], ref))

    def verdict(self) -> None:
        counted: dict[str, int] = {}
        for line in self.found:
            counted[line] = counted.get(line, 0) + 1
        lines = [f"{line}  (x{n})" if n > 1 else line for line, n in sorted(counted.items())]
        assert not lines, f"{len(lines)} distinct violations of Stripe's OpenAPI description:\n" + "\n".join(lines)

    def covered(self) -> None:
        """The scenario reached every flow, both with an answer and a refusal."""
        assert {(m, p) for m, p, s in self.seen if s == 200} == OPERATIONS
        assert {(m, p) for m, p, s in self.seen if s != 200} == OPERATIONS


# --- the scenario: every flow, answered and refused ---------------------------------------

CAPS = {"card_payments": {"requested": True}, "transfers": {"requested": True}}
ADDRESS = {"line1": "address_full_match", "city": "South San Francisco", "postal_code": "94080", "state": "CA"}
PERSON = {"first_name": "Jenny", "last_name": "Rosen", "email": "jenny@example.com", "phone": "0000000000",
          "dob": {"day": 1, "month": 1, "year": 1902}, "id_number": "222222222", "ssn_last_4": "0000",
          "address": ADDRESS}  # fmt: skip
PREFILL = {
    "business_profile": {"mcc": "5734", "url": "https://accessible.stripe.com", "name": "Jenny's",
                         "support_email": "help@example.com", "support_address": ADDRESS},
    "tos_acceptance": {"date": 1700000000, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
    "external_account": "btok_us_verified",
    "settings": {"payouts": {"schedule": {"interval": "weekly", "weekly_anchor": "friday"}},
                 "payments": {"statement_descriptor": "JENNYS"}},
}  # fmt: skip
COMPANY = {"name": "Rocket Rides", "tax_id": "222222222", "phone": "0000000000", "address": ADDRESS,
           "owners_provided": True, "directors_provided": True}  # fmt: skip
URLS = {"refresh_url": "http://127.0.0.1:8000/r", "return_url": "http://127.0.0.1:8000/b"}


class Side(Protocol):
    """One platform's view of Stripe: raw API calls, and the engine's gateway port."""

    gateway: StripeGateway

    def call(self, op: str, *args: Any, key: str | None = None, invalid: bool = False) -> tuple[int, Any]: ...


def expect(side: Side, status: int, op: str, *args: Any, key: str | None = None, invalid: bool = False) -> Any:
    got, answer = side.call(op, *args, key=key, invalid=invalid)
    assert got == status, f"{op}{args!r}: {got} {answer!r}"
    return answer


@dataclass
class InProcess:
    gateway: Any
    api: JudgedApi

    def call(self, op: str, *args: Any, key: str | None = None, invalid: bool = False) -> tuple[int, Any]:
        method = getattr(self.api, op)
        self.api.on_purpose = invalid
        try:
            return 200, method(*args, idempotency_key=key) if op.startswith(("create", "update")) else method(*args)
        except StripeFailure as exc:
            return exc.http_status or 0, str(exc)
        finally:
            self.api.on_purpose = False


@dataclass
class OverHttp:
    gateway: Any
    client: Any

    def call(self, op: str, *args: Any, key: str | None = None, invalid: bool = False) -> tuple[int, Any]:
        options: dict[str, Any] = {"headers": {ON_PURPOSE: "1"}} if invalid else {}
        if key:
            options["idempotency_key"] = key
        v1 = self.client.v1
        run = {
            "create_account": lambda: v1.accounts.create(args[0], options),
            "retrieve_account": lambda: v1.accounts.retrieve(args[0], None, options),
            "update_account": lambda: v1.accounts.update(args[0], args[1], options),
            "list_accounts": lambda: v1.accounts.list(args[0] if args else None, options),
            "create_account_link": lambda: v1.account_links.create(args[0], options),
            "create_webhook_endpoint": lambda: v1.webhook_endpoints.create(args[0], options),
            "list_webhook_endpoints": lambda: v1.webhook_endpoints.list(args[0] if args else None, options),
            "retrieve_webhook_endpoint": lambda: v1.webhook_endpoints.retrieve(args[0], None, options),
            "update_webhook_endpoint": lambda: v1.webhook_endpoints.update(args[0], args[1], options),
            "delete_webhook_endpoint": lambda: v1.webhook_endpoints.delete(args[0], None, options),
            # the connected account goes in the ``Stripe-Account`` header
            "create_payout": lambda: v1.payouts.create(args[1], {**options, "stripe_account": args[0]}),
            "retrieve_payout": lambda: v1.payouts.retrieve(args[1], None, {**options, "stripe_account": args[0]}),
        }[op]
        try:
            return 200, run().to_dict()
        except stripe.StripeError as exc:
            return exc.http_status or 0, str(exc)


def exercise(mine: Side, other: Side, sim: Simulator, clock: FakeClock) -> None:
    """Every flow the engine uses, with every kind of answer Stripe gives on it."""
    kinds: list[dict[str, Any]] = [
        {"type": "express"}, {"type": "standard"}, {"type": "custom"}, {},
        {"controller": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                        "requirement_collection": "application", "stripe_dashboard": {"type": "none"}}},
        {"controller": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                        "stripe_dashboard": {"type": "express"}}},
    ]  # fmt: skip
    ids = []
    for n, kind in enumerate(kinds):
        params = {"country": "US", "capabilities": CAPS, "business_type": "individual", "individual": PERSON,
                  "metadata": {"ref": f"seller-{n}"}, "email": "jenny@example.com", **PREFILL, **kind}  # fmt: skip
        ids.append(expect(mine, 200, "create_account", params, key=f"create-{n}")["id"])
    assert expect(mine, 200, "create_account", params, key=f"create-{n}")["id"] == ids[-1]  # replayed
    for business_type in ("company", "non_profit", "government_entity"):
        params = {
            "country": "US",
            "type": "custom",
            "business_type": business_type,
            "company": COMPANY,
            "capabilities": CAPS,
        }
        ids.append(expect(mine, 200, "create_account", params)["id"])
    japan = {
        "first_name_kana": "ジェニー",
        "last_name_kanji": "山田",
        "address_kana": {"line1": "1-1"},
        "gender": "female",
    }
    ids.append(
        expect(
            mine,
            200,
            "create_account",
            {"country": "JP", "business_type": "individual", "individual": japan, "capabilities": CAPS},
        )["id"]
    )
    ids.append(
        expect(
            mine,
            200,
            "create_account",
            {"country": "GB", "business_type": "company", "company": {"name": "Ltd"}, "capabilities": CAPS},
        )["id"]
    )
    # no dashboard: Stripe requires capabilities (so an account never shows action_required.requested_capabilities)
    expect(mine, 400, "create_account", {"country": "DE", "type": "custom"})
    open_country = expect(mine, 200, "create_account", {"type": "express"})["id"]  # no country: the holder chooses
    ids.append(open_country)
    ids.append(
        expect(
            mine,
            200,
            "create_account",
            {"country": "US", "capabilities": {"transfers": {"requested": True}}},
            key="bare",
        )["id"]
    )
    express, standard, custom, plain = ids[0], ids[1], ids[2], ids[3]

    expect(mine, 400, "create_account", {"country": "US", "colour": "blue"}, invalid=True)
    expect(mine, 400, "create_account", {"country": "US", "type": "platinum"}, invalid=True)
    expect(mine, 400, "create_account", {"country": "US", "representative": {"first_name": "Jenny"}}, invalid=True)
    expect(mine, 400, "create_account", {"country": "US", "controller": {"losses": {"payments": "application"}}})
    expect(mine, 400, "create_account", {"country": "GB", "business_type": "government_entity"})
    expect(mine, 400, "create_account", {"country": "ZZ"})
    expect(mine, 400, "create_account", {"country": "FR"}, key="bare")  # the key was used for other parameters
    expect(mine, 400, "create_account", {"country": "US"}, key="k" * 256)

    for account_id in ids:
        expect(mine, 200, "retrieve_account", account_id)
    expect(mine, 403, "retrieve_account", "acct_doesnotexist")
    expect(other, 403, "retrieve_account", express)
    expect(mine, 200, "update_account", plain, {"individual": {"first_name": "Jenny"}})  # no link yet: pre-fill
    tos = {"tos_acceptance": {"date": 1700000000, "ip": "203.0.113.7"}}
    expect(mine, 400, "update_account", plain, tos)  # Stripe collects: never the platform's
    expect(mine, 200, "update_account", custom, tos)
    expect(mine, 200, "update_account", express, {"business_profile": {"name": "Shop"}, "metadata": {"ref": "", "note": "vip"},
           "settings": {"payouts": {"schedule": {"interval": "monthly", "monthly_anchor": 15}}}, "email": "shop@example.com"}, key="upd")  # fmt: skip
    expect(
        mine, 200, "update_account", express, {"capabilities": {"us_bank_account_ach_payments": {"requested": True}}}
    )
    expect(mine, 400, "update_account", express, {"representative": {"first_name": "Jenny"}}, invalid=True)
    expect(
        mine,
        400,
        "update_account",
        express,
        {"individual": {"dob": {"day": "first", "month": 1, "year": 1902}}},
        invalid=True,
    )
    expect(other, 403, "update_account", express, {"business_profile": {"name": "Mine now"}})

    link = {"account": express, "type": "account_onboarding", **URLS}
    expect(
        mine,
        200,
        "create_account_link",
        {**link, "collection_options": {"fields": "eventually_due", "future_requirements": "include"}},
    )
    expect(mine, 200, "create_account_link", {**link, "account": custom, "type": "account_update"})
    expect(mine, 400, "create_account_link", {**link, "type": "account_update"})
    expect(mine, 400, "create_account_link", {**link, "refresh_url": "nope"})
    expect(mine, 400, "create_account_link", {"account": express}, invalid=True)
    expect(other, 403, "create_account_link", link)
    expect(mine, 403, "create_account_link", {**link, "account": "acct_doesnotexist"})
    expect(mine, 400, "update_account", express, {"individual": {"last_name": "Rosen"}})  # locked after the first link
    expect(mine, 400, "update_account", express, {"external_account": "btok_us_verified"})

    first = expect(mine, 200, "list_accounts", {"limit": 3})
    assert first["has_more"]
    older = expect(mine, 200, "list_accounts", {"limit": 3, "starting_after": first["data"][-1]["id"]})
    back = expect(mine, 200, "list_accounts", {"limit": 3, "ending_before": older["data"][0]["id"]})
    assert [a["id"] for a in back["data"]] == [a["id"] for a in first["data"]]
    since = sim.now()
    clock.advance(timedelta(minutes=1))
    expect(mine, 200, "create_account", {"country": "US", "capabilities": CAPS})
    assert len(expect(mine, 200, "list_accounts", {"created": {"gt": since}})["data"]) == 1
    expect(mine, 200, "list_accounts", {"created": since, "limit": 100})
    assert expect(other, 200, "list_accounts")["data"] == []
    expect(mine, 400, "list_accounts", {"limit": 1000})
    expect(mine, 400, "list_accounts", {"starting_after": "acct_doesnotexist"})
    expect(mine, 400, "list_accounts", {"limit": "many"}, invalid=True)

    # the engine's own calls, through the gateway port
    new = NewAccount("engine-1", "US", ("card_payments", "transfers"), type="express", business_type="individual",
                     prefill={"business_profile": {"url": "https://accessible.stripe.com"}, "individual": PERSON})  # fmt: skip
    snap = mine.gateway.create_account(new, idempotency_key="engine-1")
    mine.gateway.retrieve_account(snap.id)
    mine.gateway.update_account(snap.id, {"business_profile": {"mcc": "5734"}})
    mine.gateway.list_accounts(limit=2, created_gte=clock.now() - timedelta(hours=1))
    request = LinkRequest(snap.id, LinkParams(), URLS["refresh_url"], URLS["return_url"])
    sim.visit(mine.gateway.create_account_link(request).url).submit(
        {"business_profile": {"mcc": "5734"}}
    ).save_for_later()
    sim.visit(mine.gateway.create_account_link(request).url).complete()
    update = LinkRequest(custom, LinkParams(type=LinkType.ACCOUNT_UPDATE), URLS["refresh_url"], URLS["return_url"])
    sim.visit(mine.gateway.create_account_link(update).url).complete({"individual.address.line1": "address_no_match"})
    chosen = LinkRequest(open_country, LinkParams(), *URLS.values())
    sim.visit(mine.gateway.create_account_link(chosen).url).complete({"country": "GB"})
    assert expect(mine, 200, "retrieve_account", open_country)["country"] == "GB"
    mine.gateway.create_account(NewAccount("engine-2", None, (), type="express"), idempotency_key="engine-2")

    company = LinkRequest(ids[6], LinkParams(fields=LinkFields.EVENTUALLY_DUE), *URLS.values())
    sim.visit(mine.gateway.create_account_link(company).url).complete({"company.tax_id": "000000000"})  # pending
    expect(mine, 200, "update_account", custom, {"business_profile": {"url": "https://disallowed.stripe.com"}})

    # webhook endpoints: the self-check lists them; a set-up is made, broken and mended with the rest
    hook = "https://pay.example/webhooks/stripe"
    events = ["account.updated", "capability.updated", "account.application.deauthorized"]
    connect = expect(mine, 200, "create_webhook_endpoint", {"url": hook, "enabled_events": events, "connect": True,
                     "description": "onboarding-fsm", "metadata": {"env": "test"}}, key="hook")  # fmt: skip
    assert connect["application"] and connect["secret"].startswith("whsec_")
    platform = expect(mine, 200, "create_webhook_endpoint", {"url": hook, "enabled_events": ["*"]})
    assert platform["application"] is None
    expect(mine, 400, "create_webhook_endpoint", {"url": "not a url", "enabled_events": events})
    expect(mine, 400, "create_webhook_endpoint", {"url": hook}, invalid=True)
    expect(mine, 400, "create_webhook_endpoint", {"url": hook, "enabled_events": ["no such event"]}, invalid=True)
    assert len(expect(mine, 200, "list_webhook_endpoints")["data"]) == 2
    assert (
        expect(mine, 200, "list_webhook_endpoints", {"limit": 1, "starting_after": platform["id"]})["data"][0]["id"]
        == connect["id"]
    )
    assert expect(other, 200, "list_webhook_endpoints")["data"] == []
    expect(mine, 400, "list_webhook_endpoints", {"starting_after": "we_doesnotexist"})
    expect(mine, 400, "list_webhook_endpoints", {"limit": 0})
    assert "secret" not in expect(mine, 200, "retrieve_webhook_endpoint", connect["id"])
    expect(other, 404, "retrieve_webhook_endpoint", connect["id"])
    disabled = expect(mine, 200, "update_webhook_endpoint", connect["id"], {"disabled": True, "metadata": ""})
    assert disabled["status"] == "disabled" and disabled["metadata"] == {}
    expect(mine, 200, "update_webhook_endpoint", connect["id"], {"disabled": False, "enabled_events": ["*"],
           "url": hook + "/", "description": ""})  # fmt: skip
    expect(mine, 400, "update_webhook_endpoint", connect["id"], {"url": "ftp://pay.example"})
    expect(mine, 400, "update_webhook_endpoint", connect["id"], {"connect": False}, invalid=True)
    expect(other, 404, "update_webhook_endpoint", connect["id"], {"disabled": True})
    mine.gateway.list_webhook_endpoints()
    deleted = expect(mine, 200, "delete_webhook_endpoint", platform["id"])
    assert deleted == {"id": platform["id"], "object": "webhook_endpoint", "deleted": True}
    expect(mine, 404, "delete_webhook_endpoint", platform["id"])

    # payouts on a connected account: paid, failed (the bank account errored), refused
    bank = {"object": "bank_account", "account_number": "000111111116", "routing_number": "110000000",
            "country": "US", "currency": "usd", "account_holder_type": "individual"}  # fmt: skip
    payee = expect(mine, 200, "create_account", {"country": "US", "type": "custom", "capabilities": CAPS,
                   "business_type": "individual", "individual": PERSON, **PREFILL, "external_account": bank})["id"]  # fmt: skip
    expect(mine, 400, "create_payout", payee, {"amount": 1000, "currency": "usd"})  # not onboarded: payouts disabled
    sim.visit(mine.gateway.create_account_link(LinkRequest(payee, LinkParams(), *URLS.values())).url).complete()
    failed = expect(mine, 200, "create_payout", payee, {"amount": 1000, "currency": "usd", "description": "weekly",
                    "metadata": {"run": "7"}, "statement_descriptor": "SHOP"}, key="payout-1")  # fmt: skip
    assert (failed["status"], failed["failure_code"]) == ("failed", "no_account")
    assert expect(mine, 200, "retrieve_payout", payee, failed["id"]) == failed
    errored = expect(mine, 200, "retrieve_account", payee)
    assert errored["external_accounts"]["data"][0]["status"] == "errored" and not errored["payouts_enabled"]
    expect(mine, 400, "create_payout", payee, {"amount": 1000, "currency": "usd"})  # stopped until replaced
    expect(mine, 400, "update_account", payee, {"external_account": {**bank, "account_number": "123456789012"}})
    expect(mine, 200, "update_account", payee, {"external_account": {**bank, "account_number": "000123456789"}})
    paid = expect(mine, 200, "create_payout", payee, {"amount": 500, "currency": "usd", "method": "standard"})
    assert paid["status"] == "paid"
    expect(mine, 400, "create_payout", payee, {"amount": 500, "currency": "eur"})  # no bank account in eur
    expect(mine, 400, "create_payout", payee, {"currency": "usd"}, invalid=True)
    expect(other, 403, "create_payout", payee, {"amount": 500, "currency": "usd"})
    expect(mine, 404, "retrieve_payout", payee, "po_doesnotexist")
    expect(other, 403, "retrieve_payout", payee, paid["id"])

    # Stripe acting on its own, and time passing: what the events carry
    sim.visit(mine.gateway.create_account_link(LinkRequest(standard, LinkParams(), *URLS.values())).url).complete()
    sim.charge(standard, "4000000000004210")
    sim.add_future_requirements(snap.id, ["company.tax_id"], clock.now() + timedelta(days=2))
    sim.trigger_next_requirements(snap.id)
    sim.review(ids[4])
    sim.reject(ids[5], "terms_of_service")
    sim.deauthorize(plain)
    clock.advance(timedelta(days=20))
    sim.tick()
    expect(mine, 403, "retrieve_account", plain)
    expect(mine, 200, "list_accounts", {"limit": 100})


# --- in process ------------------------------------------------------------------------


class JudgedApi:
    """A ``StripeApi`` whose every request and answer (or refusal) is judged."""

    def __init__(self, api: Any, judge: Judge) -> None:
        self.api, self.judge, self.platform = api, judge, api.platform
        self.on_purpose = False

    def _call(self, method: str, path: str, params: dict[str, Any], run: Callable[[], Any]) -> Any:
        if not self.on_purpose:
            self.judge.request(method, path, params)
        try:
            answer = run()
        except StripeFailure as exc:
            self.judge.answer(method, path, exc.http_status or 400, failure_body(exc))
            raise
        self.judge.answer(method, path, 200, answer)
        return answer

    def create_account(self, params: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        return self._call(
            "POST", "/v1/accounts", params, lambda: self.api.create_account(params, idempotency_key=idempotency_key)
        )

    def retrieve_account(self, account_id: str) -> Any:
        return self._call("GET", f"/v1/accounts/{account_id}", {}, lambda: self.api.retrieve_account(account_id))

    def update_account(self, account_id: str, params: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        return self._call(
            "POST",
            f"/v1/accounts/{account_id}",
            params,
            lambda: self.api.update_account(account_id, params, idempotency_key=idempotency_key),
        )

    def list_accounts(self, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", "/v1/accounts", params or {}, lambda: self.api.list_accounts(params))

    def create_account_link(self, params: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        return self._call(
            "POST",
            "/v1/account_links",
            params,
            lambda: self.api.create_account_link(params, idempotency_key=idempotency_key),
        )

    def create_webhook_endpoint(self, params: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        run = lambda: self.api.create_webhook_endpoint(params, idempotency_key=idempotency_key)  # noqa: E731
        return self._call("POST", "/v1/webhook_endpoints", params, run)

    def list_webhook_endpoints(self, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", "/v1/webhook_endpoints", params or {}, lambda: self.api.list_webhook_endpoints(params))

    def retrieve_webhook_endpoint(self, endpoint_id: str) -> Any:
        path = f"/v1/webhook_endpoints/{endpoint_id}"
        return self._call("GET", path, {}, lambda: self.api.retrieve_webhook_endpoint(endpoint_id))

    def update_webhook_endpoint(
        self, endpoint_id: str, params: dict[str, Any], *, idempotency_key: str | None = None
    ) -> Any:
        run = lambda: self.api.update_webhook_endpoint(endpoint_id, params, idempotency_key=idempotency_key)  # noqa: E731
        return self._call("POST", f"/v1/webhook_endpoints/{endpoint_id}", params, run)

    def delete_webhook_endpoint(self, endpoint_id: str) -> Any:
        path = f"/v1/webhook_endpoints/{endpoint_id}"
        return self._call("DELETE", path, {}, lambda: self.api.delete_webhook_endpoint(endpoint_id))

    def create_payout(self, account_id: str, params: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        run = lambda: self.api.create_payout(account_id, params, idempotency_key=idempotency_key)  # noqa: E731
        return self._call("POST", "/v1/payouts", params, run)

    def retrieve_payout(self, account_id: str, payout_id: str) -> Any:
        path = f"/v1/payouts/{payout_id}"
        return self._call("GET", path, {}, lambda: self.api.retrieve_payout(account_id, payout_id))


def test_every_in_process_answer_conforms(clock: FakeClock) -> None:
    judge = Judge("in process")
    sim = Simulator(clock, verification_delay=3600)
    other = sim.as_platform("other")
    sim.api = mine_api = JudgedApi(sim.api, judge)  # type: ignore[assignment]  # the gateway port goes through it too
    other.api = other_api = JudgedApi(other.api, judge)  # type: ignore[assignment]
    exercise(InProcess(sim, mine_api), InProcess(other, other_api), sim, clock)
    for event in sim.events:
        judge.event(event)
    judge.covered()
    judge.verdict()


# --- over HTTP -------------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    on_purpose: bool
    body: bytes = b""
    status: int = 0
    answer: bytes = b""


class Tap:
    """ASGI middleware: every API exchange on the flows, as it crossed the wire."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or template(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower() for k, _ in scope["headers"]}
        exchange = Exchange(
            scope["method"], scope["path"], scope["query_string"].decode(), ON_PURPOSE.lower() in headers
        )
        self.exchanges.append(exchange)

        async def heard() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                exchange.body += message.get("body", b"")
            return message

        async def said(message: Any) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                exchange.answer += message.get("body", b"")
            await send(message)

        await self.app(scope, heard, said)


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[Simulator, Tap, str]]:
    sock = bind()
    sim = Simulator(clock, hosted_base_url=url_of(sock), verification_delay=3600)
    tap = Tap(SimulatorServer(sim).app)
    running = Served(tap, sock)
    try:
        yield sim, tap, running.url
    finally:
        running.stop()


def test_every_http_answer_and_sdk_request_conforms(served: tuple[Simulator, Tap, str], clock: FakeClock) -> None:
    sim, tap, url = served
    judge = Judge("over HTTP")

    def side(key: str) -> OverHttp:
        gateway = StripeSdkGateway(key, api_base=url, max_network_retries=0, sleep=lambda s: None)
        return OverHttp(gateway, stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=0))

    exercise(side(TEST_KEY), side(OTHER_TEST_KEY), sim, clock)
    expect(side("sk_test_nobody"), 401, "list_accounts")
    for exchange in tap.exchanges:
        raw = exchange.body.decode() if exchange.method == "POST" else exchange.query
        if exchange.on_purpose:
            assert exchange.status == 400, f"{exchange.method} {exchange.path} {raw} was meant to be refused"
        else:
            judge.request(exchange.method, exchange.path, decode(raw))
        judge.answer(exchange.method, exchange.path, exchange.status, json.loads(exchange.answer))
    for event in sim.events:
        judge.event(event)
    judge.covered()
    judge.verdict()


# --- the judge itself --------------------------------------------------------------------


def test_the_judge_refuses_what_stripe_would_not_send() -> None:
    account = pointer("components", "schemas", "account")
    assert violations({"id": "acct_1", "object": "account", "business_type": None}, account) == []
    assert violations({"id": "acct_1", "object": "account", "livemode": False}, account) == [
        "$: Additional properties are not allowed ('livemode' was unexpected)"
    ]
    person = {"id": "person_1", "object": "person", "account": "acct_1", "created": 1, "dob": {"day": "1"}}
    assert violations({"id": "acct_1", "object": "account", "individual": person}, account) == [
        "$.individual.dob.day: '1' is not of type 'integer'"
    ]
    body = pointer("paths", "/v1/accounts", "post", "requestBody", "content", FORM, "schema")
    wire = decode("capabilities[transfers][requested]=true&tos_acceptance[date]=1700000000&individual[ssn_last_4]=0000")
    assert violations(coerce(wire, at(body)), body) == []
    assert violations(coerce(decode("representative[first_name]=Jenny"), at(body)), body) != []
