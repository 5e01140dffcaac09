"""DNS probe: does a name resolve, and if not, why (no such name, no answer, no server)?

The operator asks this of a database's Service name to tell a first install from an existing
database, so the outcomes that mean "not there" (NXDOMAIN, no address records) are kept apart
from those that mean "cannot tell" (timeout, no working nameserver).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

try:
    import dns.exception
    import dns.name
    import dns.resolver

    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - reported by require_dnspython()
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = str(exc)

# Outcomes of probe_dns(), in the result's ``status``.
RESOLVED = "resolved"  # the name has address records
NXDOMAIN = "nxdomain"  # the name does not exist
NO_ANSWER = "no_answer"  # the name exists but has no A/AAAA record (a headless Service without endpoints)
TIMEOUT = "timeout"  # no nameserver answered within the timeout
NO_NAMESERVERS = "no_nameservers"  # none configured, or every one failed (SERVFAIL, REFUSED, unreachable)

SYSTEM_RESOLV_CONF = "/etc/resolv.conf"


class InvalidDnsRequest(ValueError):
    """The request itself is wrong (a bad name or nameserver address): the caller must fix it."""


def require_dnspython(module: Any) -> None:
    """Fail the module with an install hint when dnspython is missing."""
    if not HAS_DNSPYTHON:
        module.fail_json(
            msg="The Python library dnspython is required on the host that runs this module "
            "(pip install dnspython): " + str(DNSPYTHON_IMPORT_ERROR)
        )


def probe_dns(
    name: str,
    nameservers: list[str] | None = None,
    port: int = 53,
    search: list[str] | None = None,
    timeout: float = 5.0,
    resolv_conf: str = SYSTEM_RESOLV_CONF,
) -> dict[str, Any]:
    """Resolve ``name`` to its A and AAAA addresses and say what happened.

    ``nameservers`` (IP addresses) replace those of ``resolv_conf``; ``search`` replaces its
    search domains (used for names without a trailing dot, with the usual ndots rule).
    ``timeout`` bounds the whole resolution. Never raises for a DNS outcome; raises
    InvalidDnsRequest for a malformed name or nameserver.
    """
    try:
        # Relative unless it ends with a dot, so that the search domains apply to it.
        qname = dns.name.from_text(name, origin=None)
    except dns.exception.DNSException as exc:
        raise InvalidDnsRequest(f"{name!r} is not a valid DNS name: {exc}") from exc
    for server in nameservers or []:
        try:
            ipaddress.ip_address(server)
        except ValueError as exc:
            raise InvalidDnsRequest(f"nameserver {server!r} must be an IP address") from exc

    result: dict[str, Any] = {
        "name": name,
        "status": None,
        "resolved": False,
        "addresses": [],
        "canonical_name": None,
        "nameservers": list(nameservers or []),
        "port": port,
        "msg": "",
    }
    try:
        resolver = _resolver(nameservers, port, search, timeout, resolv_conf)
    except dns.resolver.NoResolverConfiguration:
        result["status"] = NO_NAMESERVERS
        result["msg"] = f"no nameservers are configured ({resolv_conf} lists none): set the nameservers"
        return result
    result["nameservers"] = [str(ns) for ns in resolver.nameservers]

    try:
        # Relative names go through the search list (as getaddrinfo would); absolute ones do not.
        answers = resolver.resolve_name(qname, family=socket.AF_UNSPEC, search=True)
    except dns.resolver.NXDOMAIN as exc:
        result["status"] = NXDOMAIN
        tried = ", ".join(str(n) for n in exc.qnames())
        result["msg"] = f"{name} does not exist (NXDOMAIN; tried {tried})"
    except dns.resolver.NoAnswer:
        result["status"] = NO_ANSWER
        result["msg"] = f"{name} exists but has no A or AAAA record"
    except dns.resolver.LifetimeTimeout as exc:
        result["status"] = TIMEOUT
        result["msg"] = f"no answer for {name} within {timeout:g}s from {_servers(result)}: {exc}"
    except dns.resolver.NoNameservers as exc:
        result["status"] = NO_NAMESERVERS
        result["msg"] = f"no nameserver could answer for {name} ({_servers(result)}): {exc}"
    except dns.exception.DNSException as exc:
        result["status"] = NO_NAMESERVERS
        result["msg"] = f"resolving {name} failed ({_servers(result)}): {exc}"
    else:
        result["status"] = RESOLVED
        result["resolved"] = True
        result["addresses"] = sorted(answers.addresses(), key=_address_order)
        result["canonical_name"] = str(answers.canonical_name())
        result["msg"] = f"{name} resolves to {', '.join(result['addresses'])}"
    return result


def _resolver(
    nameservers: list[str] | None, port: int, search: list[str] | None, timeout: float, resolv_conf: str
) -> dns.resolver.Resolver:
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        # Without configuration dnspython would search the local host name's domain.
        resolver.domain = dns.name.root
    else:
        resolver = dns.resolver.Resolver(filename=resolv_conf)
    resolver.port = port
    if search is not None:
        resolver.search = [dns.name.from_text(domain) for domain in search]
    # A per-server try may use the whole budget; the lifetime bounds the resolution.
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _address_order(address: str) -> tuple[int, int]:
    """IPv4 before IPv6, numerically within each."""
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _servers(result: dict[str, Any]) -> str:
    return ", ".join(f"{ns}:{result['port']}" for ns in result["nameservers"]) or "no nameservers"
