"""The issuer's signing keys fetched over HTTP (shared.api.auth, httpx): cached, fetched again for an
unknown kid at most once a minute, and an endpoint that does not answer a JWKS is a 503, never a key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from devstack.tokens import TokenIssuer
from shared.api.auth import KeysUnavailable, RemoteKeys


class Endpoint:
    """A local JWKS endpoint whose answer a test sets: (status, headers, body)."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                status, headers, body = endpoint.answer
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/keys"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer.generate()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_with_an_unknown_kid_fetches_again_at_most_once_a_minute(
    endpoint: Endpoint, issuer: TokenIssuer
) -> None:
    """Made-up kids cannot turn every request into a fetch; a rolled key is found within a minute."""
    endpoint.answer = (200, {}, json.dumps(issuer.jwks).encode())
    clock = Clock()
    keys = RemoteKeys(endpoint.uri, clock)
    assert keys.key_for(issuer.mint(["Exports.Admin"])).key_id == issuer.kid
    forged = jwt.encode({"x": 1}, "k" * 32, algorithm="HS256", headers={"kid": "made-up"})
    for _ in range(5):
        with pytest.raises(jwt.InvalidTokenError):
            keys.key_for(forged)
    assert endpoint.requests == 1
    clock.now += 61
    with pytest.raises(jwt.InvalidTokenError):
        keys.key_for(forged)
    assert endpoint.requests == 2
    clock.now += 3601
    keys.key_for(issuer.mint(["Exports.Admin"]))
    assert endpoint.requests == 3  # kept an hour, then fetched again


@pytest.mark.parametrize(
    "answer",
    [
        (500, {}, b"oops"),
        (302, {"Location": "http://169.254.169.254/"}, b""),  # a redirect is not followed
        (200, {}, b"not json"),
        (200, {}, b'{"keys": "none"}'),
        (200, {}, b'{"keys": [' + b'{"kty": "oct", "k": "AAAA"},' * 40_000 + b"{}]}"),  # over 1 MiB
    ],
    ids=["server-error", "redirect", "not-json", "not-a-jwks", "over-1-mib"],
)
def test_an_endpoint_that_does_not_answer_a_jwks_makes_the_keys_unavailable(
    endpoint: Endpoint, issuer: TokenIssuer, answer: tuple[int, dict[str, str], bytes]
) -> None:
    """The API answers 503 (shared.api.auth catches KeysUnavailable): no token is trusted meanwhile."""
    endpoint.answer = answer
    with pytest.raises(KeysUnavailable):
        RemoteKeys(endpoint.uri, Clock()).key_for(issuer.mint(["Exports.Admin"]))


def test_a_closed_endpoint_makes_the_keys_unavailable(issuer: TokenIssuer) -> None:
    """Nothing listening: unavailable, after the connection is refused (no hang)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(KeysUnavailable):
        RemoteKeys(f"http://127.0.0.1:{port}/keys", Clock()).key_for(issuer.mint(["Exports.Admin"]))


def test_only_the_endpoints_own_answer_of_at_most_1_mib_counts(
    endpoint: Endpoint, issuer: TokenIssuer
) -> None:
    """A redirect is not followed even to the issuer's real keys, and the real keys padded to 1 MiB are
    taken while one byte more is refused: where the answer points and how long it is decide, not what
    it would have held."""
    keys = json.dumps(issuer.jwks).encode()
    elsewhere = Endpoint()
    try:
        elsewhere.answer = (200, {}, keys)
        endpoint.answer = (302, {"Location": elsewhere.uri}, b"")
        with pytest.raises(KeysUnavailable):
            RemoteKeys(endpoint.uri, Clock()).key_for(issuer.mint(["Exports.Admin"]))
        assert elsewhere.requests == 0
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()
    padded = keys[:-1] + b" " * (RemoteKeys.MAX_BYTES - len(keys)) + b"}"
    endpoint.answer = (200, {}, padded)
    assert RemoteKeys(endpoint.uri, Clock()).key_for(issuer.mint(["Exports.Admin"])).key_id == issuer.kid
    endpoint.answer = (200, {}, padded[:-1] + b" }")
    with pytest.raises(KeysUnavailable):
        RemoteKeys(endpoint.uri, Clock()).key_for(issuer.mint(["Exports.Admin"]))


def test_an_unknown_kid_fetches_again_once_a_full_minute_has_passed(
    endpoint: Endpoint, issuer: TokenIssuer
) -> None:
    """At exactly one minute after the last fetch, a token with an unknown kid may fetch again."""
    endpoint.answer = (200, {}, json.dumps(issuer.jwks).encode())
    clock = Clock()
    keys = RemoteKeys(endpoint.uri, clock)
    forged = jwt.encode({"x": 1}, "k" * 32, algorithm="HS256", headers={"kid": "made-up"})
    with pytest.raises(jwt.InvalidTokenError):
        keys.key_for(forged)
    clock.now += RemoteKeys.REFETCH_AFTER
    with pytest.raises(jwt.InvalidTokenError):
        keys.key_for(forged)
    assert endpoint.requests == 2
