"""Where a webhook may be sent: the URL's form, and the SSRF rule on the addresses its host resolves to.

A webhook URL is ``http`` or ``https``, at most :data:`MAX_URL_LENGTH` characters, with a host and
without credentials. Its host must resolve only to public addresses; a loopback, private, link-local,
multicast, reserved or unspecified address is refused unless it lies in one of the networks of
``VID2SCENE_WEBHOOK_ALLOW_NETWORKS``. The rule is applied at job creation (an IP literal or a name
that resolves to a refused address: 422 ``WEBHOOK_URL_NOT_ALLOWED``) and again at every delivery,
on every address the host resolves to then; the delivery connects to the address it checked, so a
DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
#: How long job creation waits for the webhook host's DNS answer before leaving the check to delivery.
CREATION_RESOLVE_TIMEOUT_S = 2.0


class WebhookUrlError(ValueError):
    """A webhook URL that is malformed (``code`` ``VALIDATION_ERROR``) or not allowed (``WEBHOOK_URL_NOT_ALLOWED``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WebhookTarget:
    """A parsed webhook URL: scheme, host (without brackets), port, and the path with its query."""

    url: str
    scheme: str
    host: str
    port: int
    target: str


def parse_webhook_url(url: str) -> WebhookTarget:
    """Check a webhook URL's form.

    Args:
        url: the URL a job names.

    Returns:
        Its parts. Raises :class:`WebhookUrlError` (``VALIDATION_ERROR``) for a URL that is too long,
        not ``http``/``https``, without a host, with credentials or a bad port.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError("VALIDATION_ERROR", f"webhook_url: longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() for ch in url):
        raise WebhookUrlError("VALIDATION_ERROR", "webhook_url: contains whitespace.")
    parts: SplitResult = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlError("VALIDATION_ERROR", "webhook_url: must be an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("VALIDATION_ERROR", "webhook_url: must not carry credentials (user:password@).")
    try:
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError("VALIDATION_ERROR", f"webhook_url: bad port ({exc}).") from exc
    host = parts.hostname
    if not host:
        raise WebhookUrlError("VALIDATION_ERROR", "webhook_url: has no host.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(
        url=url, scheme=parts.scheme, host=host, port=port or (443 if parts.scheme == "https" else 80), target=target
    )


def refusal(address: IpAddress, allowed: Sequence[IpNetwork]) -> str | None:
    """Why a webhook may not go to ``address`` (e.g. ``"loopback"``), or None when it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped, allowed)
    for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not public"
    return None


def check_addresses(host: str, addresses: Sequence[IpAddress], allowed: Sequence[IpNetwork]) -> IpAddress:
    """The address to connect to when every address ``host`` resolved to is allowed.

    Returns:
        The first address. Raises :class:`WebhookUrlError` (``WEBHOOK_URL_NOT_ALLOWED``) naming the
        first refused address and why.
    """
    if not addresses:
        raise WebhookUrlError("WEBHOOK_URL_NOT_ALLOWED", f"webhook_url: {host} resolves to no address.")
    for address in addresses:
        why = refusal(address, allowed)
        if why is not None:
            raise WebhookUrlError(
                "WEBHOOK_URL_NOT_ALLOWED",
                f"webhook_url: {host} resolves to {address} ({why}); webhooks go to public addresses only "
                "unless the server allows that network (VID2SCENE_WEBHOOK_ALLOW_NETWORKS).",
            )
    return addresses[0]


def literal_address(host: str) -> IpAddress | None:
    """The address when ``host`` is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (an IP literal: itself), de-duplicated, in resolver order.

    Raises ``OSError`` (``socket.gaierror``) when the name does not resolve.
    """
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_at_creation(url: str, allowed: Sequence[IpNetwork]) -> WebhookTarget:
    """The checks of job creation: the URL's form, and its host's addresses when DNS answers quickly.

    A name that does not resolve now (or not within :data:`CREATION_RESOLVE_TIMEOUT_S`) is accepted;
    every delivery resolves and checks it again.

    Returns:
        The parsed URL. Raises :class:`WebhookUrlError`.
    """
    target = parse_webhook_url(url)
    try:
        addresses = await asyncio.wait_for(resolve(target.host, target.port), CREATION_RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError, UnicodeError):
        return target
    check_addresses(target.host, addresses, allowed)
    return target
