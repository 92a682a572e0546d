"""Which webhook addresses the service may call, and what the health check leaves on the queue."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import orjson
import pytest
from azure.core.exceptions import ServiceRequestError
from hypothesis import given
from hypothesis import strategies as st

from shared.model import AdlsDestination, Export, Secret
from shared.notify import Notice, Notifier, WebhookRefused, check_webhook_address, embedded_ipv4, is_public

# IPv4 addresses that are not public: private, loopback, link-local (cloud metadata), shared (CGNAT),
# "this network", reserved, benchmarking, IETF protocol assignments, multicast and broadcast.
NOT_PUBLIC_V4 = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "240.0.0.0/4",
    "198.18.0.0/15",
    "192.0.0.0/24",
    "224.0.0.0/4",
]


@st.composite
def not_public_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = ipaddress.IPv4Network(draw(st.sampled_from(NOT_PUBLIC_V4)))
    return network[draw(st.integers(0, network.num_addresses - 1))]


def _embed(form: str, inner: ipaddress.IPv4Address, extra: int) -> ipaddress.IPv6Address:
    """`inner` carried in one of the IPv6 forms that embed an IPv4 address; `extra` fills free bits."""
    v4 = int(inner)
    value = {
        "mapped": (0xFFFF << 32) | v4,  # ::ffff:a.b.c.d
        "compatible": v4,  # ::a.b.c.d
        "translated": (0xFFFF << 48) | v4,  # ::ffff:0:a.b.c.d
        "nat64": (0x64FF9B << 96) | v4,  # 64:ff9b::a.b.c.d
        "local-nat64": (0x64FF9B0001 << 80) | (extra & (2**80 - 1)),  # 64:ff9b:1::/48
        "6to4": (0x2002 << 112) | (v4 << 80) | (extra & (2**80 - 1)),  # 2002:aabb:ccdd::/48
        "teredo-server": (0x20010000 << 96) | (v4 << 64) | (extra & (2**64 - 1)),
        "teredo-client": (0x20010000 << 96)
        | (0x08080808 << 64)
        | (extra & 0xFFFFFFFF00000000)
        | (~v4 & 0xFFFFFFFF),
    }[form]
    return ipaddress.IPv6Address(value)


FORMS = [
    "mapped",
    "compatible",
    "translated",
    "nat64",
    "local-nat64",
    "6to4",
    "teredo-server",
    "teredo-client",
]


@given(st.sampled_from(FORMS), not_public_ipv4(), st.integers(0, 2**80 - 1))
def test_every_ipv6_form_that_embeds_a_private_ipv4_address_is_refused(
    form: str, inner: ipaddress.IPv4Address, extra: int
) -> None:
    """IPv4-mapped, -compatible, -translated, NAT64 (both prefixes), 6to4 and Teredo forms of a private,
    loopback or link-local IPv4 address are refused, as a webhook's only address or among public ones."""
    address = _embed(form, inner, extra)
    assert not is_public(address)
    for addresses in ([str(address)], ["20.50.60.70", str(address)]):
        with pytest.raises(WebhookRefused):
            check_webhook_address("https://hooks.example/x", resolve=lambda host, port, a=addresses: a)


@given(
    st.sampled_from(["mapped", "compatible", "translated", "nat64", "6to4", "teredo-server"]),
    not_public_ipv4(),
)
def test_the_embedded_ipv4_address_is_found_in_each_form(form: str, inner: ipaddress.IPv4Address) -> None:
    """The address a translator would reach is the one judged."""
    assert inner in embedded_ipv4(_embed(form, inner, 0))


@pytest.mark.parametrize(
    "address",
    ["::1", "::", "fe80::1", "fc00::5", "fd12:3456::1", "ff02::1", "2001:db8::1", "100::1"],
)
def test_ipv6_addresses_that_are_not_global_unicast_are_refused(address: str) -> None:
    """Loopback, unspecified, link-local, unique-local, multicast, documentation and discard addresses."""
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["20.50.60.70", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_and_translations_of_public_ipv4_addresses_are_allowed(address: str) -> None:
    """A public address, or NAT64 and 6to4 forms of a public IPv4 address, may be called."""
    assert is_public(ipaddress.ip_address(address))


def test_the_host_is_resolved_once_and_the_first_checked_address_is_the_target() -> None:
    """check_webhook_address resolves the name once and says which address to connect to, and under which Host."""
    lookups: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["20.50.60.70", "2606:4700:4700::1111"]

    target = check_webhook_address("https://Hooks.Example:8443/in?x=1", resolve=resolve)
    assert lookups == [("hooks.example", 8443)]
    assert (target.address, target.host_header, target.target) == (
        ipaddress.ip_address("20.50.60.70"),
        "hooks.example:8443",
        "/in?x=1",
    )
    assert target.connect_url == "https://20.50.60.70:8443/in?x=1"


class _Queue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def send_message(self, content: str) -> Any:
        if self.fail:
            raise ServiceRequestError("storage unreachable")
        self.sent.append(content)


EXPORT = Export(
    "p1",
    "e1",
    AdlsDestination("https://acct.dfs.core.windows.net", "fs", "", Secret("a2V5")),
    webhook="https://hooks.example/in?token=do-not-copy",
    webhook_secret=Secret("webhook-secret-do-not-copy"),
)


def test_the_notifier_queues_the_event_without_the_webhooks_address_or_secret() -> None:
    """The queued message names the project, the export and the event; never the URL or the secret."""
    queue = _Queue()
    event = {"type": "export.state-changed", "to": "postponed"}
    assert Notifier(queue).send(EXPORT, event) is Notice.QUEUED
    (message,) = queue.sent
    decoded = base64.b64decode(message, validate=True)  # as the queue trigger decodes it (host.json)
    assert orjson.loads(decoded) == {"projectId": "p1", "exportId": "e1", "event": event}
    assert b"do-not-copy" not in decoded and b"hooks.example" not in decoded


def test_the_notifier_never_raises_and_skips_exports_without_a_webhook() -> None:
    """A queue that cannot be reached gives "not-queued"; an export without a webhook queues nothing."""
    assert Notifier(_Queue(fail=True)).send(EXPORT, {}) is Notice.NOT_QUEUED
    queue = _Queue()
    assert Notifier(queue).send(Export("p1", "e2", EXPORT.destination), {}) is None
    assert queue.sent == []
