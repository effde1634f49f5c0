"""A holder's browser without a browser: follows redirects by hand and fills
the simulator's hosted form over HTTP (the Playwright test does it for real)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")


@dataclass
class Holder:
    client: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=30))
    trail: list[str] = field(default_factory=list)

    def get(self, url: str) -> httpx.Response:
        self.trail.append(url)
        return self.client.get(url)

    def open_form(self, start_url: str) -> tuple[str, dict[str, str], httpx.Response]:
        """Start (or refresh) and follow redirects to the hosted form."""
        response = self.get(start_url)
        while response.status_code in (302, 303, 307):
            response = self.get(response.headers["location"])
        form = _Form()
        form.feed(response.text)
        base = str(response.url).split("/setup/")[0]
        return base + form.action, form.fields, response

    def submit(self, action: str, fields: dict[str, str], *, finish: bool = True, **changes: str) -> httpx.Response:
        data = {**fields, **changes, "_action": "finish" if finish else "save"}
        if "_sms_code" in data and not data["_sms_code"]:
            data["_sms_code"] = "000-000"
        response = self.client.post(action, data=data)
        self.trail.append(action)
        return response

    def follow(self, response: httpx.Response) -> httpx.Response:
        while response.status_code in (302, 303, 307):
            response = self.get(response.headers["location"])
        return response

    def onboard(self, start_url: str, *, finish: bool = True, **changes: str) -> httpx.Response:
        """Start, fill the form (test data, plus ``changes``), finish; land on the platform page."""
        action, fields, _ = self.open_form(start_url)
        return self.follow(self.submit(action, fields, finish=finish, **changes))
