"""Who may act: without `[dashboard] token` nobody (the dashboard is read-only); with it, a
browser that signed in with the token, or a script that sends `Authorization: Bearer TOKEN`.

A signed-in browser holds a session cookie: an issue time and a random nonce, signed with a key
derived from the token (HMAC-SHA256), so the server keeps no session store, and changing the
token signs everyone out. Every action is a POST that carries a CSRF token, the HMAC of the
session's nonce: a page of another site can make the browser send the cookie (SameSite=Strict
already refuses that in current browsers) but cannot read the CSRF token out of our pages. A
Bearer request carries no ambient credential, so it needs no CSRF token. Tokens are compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "jobpool_dashboard"
SESSION_LIFE = 12 * 3600  # seconds a sign-in lasts


@dataclass(frozen=True)
class Visitor:
    """What one request may do: `can_act` (signed in, or a Bearer token), and the CSRF token
    its forms must carry ('' when it cannot act, or needs none)."""

    can_act: bool
    signed_in: bool
    csrf: str = ""
    bearer: bool = False


class Auth:
    def __init__(self, token: str | None, clock: Callable[[], float] = time.time):
        self.token = token
        self.clock = clock
        # The signing key: from the token, so that a new token voids every cookie.
        self._key = (
            hashlib.sha256(b"jobpool-dashboard:" + token.encode()).digest() if token else b""
        )

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def check_token(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def new_session(self) -> str:
        """A cookie value for a browser that just signed in."""
        body = f"{int(self.clock())}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign('session:' + body)}"

    def visitor(self, request: Request) -> Visitor:
        if self.token is None:
            return Visitor(can_act=False, signed_in=False)
        header = request.headers.get("authorization", "")
        scheme, _, offered = header.partition(" ")
        if scheme.lower() == "bearer" and offered:
            ok = self.check_token(offered.strip())
            return Visitor(can_act=ok, signed_in=False, bearer=ok)
        nonce = self._session_nonce(request.cookies.get(COOKIE, ""))
        if nonce is None:
            return Visitor(can_act=False, signed_in=False)
        return Visitor(can_act=True, signed_in=True, csrf=self._sign("csrf:" + nonce))

    def csrf_ok(self, visitor: Visitor, offered: str) -> bool:
        if not visitor.can_act:
            return False
        if visitor.bearer:
            return True
        return bool(offered) and hmac.compare_digest(offered.encode(), visitor.csrf.encode())

    def _session_nonce(self, cookie: str) -> str | None:
        """The nonce of a valid, unexpired session cookie, else None."""
        issued, _, rest = cookie.partition(".")
        nonce, _, signature = rest.partition(".")
        if not (issued.isdigit() and nonce and signature):
            return None
        expected = self._sign(f"session:{issued}.{nonce}")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        if not 0 <= self.clock() - int(issued) <= SESSION_LIFE:
            return None
        return nonce

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
