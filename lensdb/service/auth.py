"""Who may call the server: a bearer token compared in constant time
(`hmac.compare_digest`), and loopback detection for the bind address (anywhere else the
server needs a token). What a request may make it open is `policy.py`'s job.
"""

from __future__ import annotations

import hmac
import ipaddress

from lensdb.errors import LensDBError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class Unauthorized(LensDBError):
    """A request without the right bearer token (HTTP 401)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; any other name or address is public."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>`, in constant time."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())
