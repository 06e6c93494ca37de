"""The Kubernetes CEL libraries (lists, regex, URL, quantity, IP/CIDR, sets) for cel-expr-python.

The API server adds these to every CEL environment (k8s.io/apiserver/pkg/cel/library).
cel-expr-python cannot return opaque Python objects, so a Quantity, URL, IP or CIDR travels through
CEL as a map with one tag key holding a canonical value: equality then behaves as in Kubernetes (by
value), and every member function checks the tag, so a plain map is rejected like a wrong-typed
argument. A function raising a Python exception becomes a CEL error value (absorbed by `||`/`&&`
like any CEL error).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import re
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

from cel_expr_python import cel

from polgen.engines.k8s_quantity import is_quantity, parse_quantity

_D = cel.Type.DYN
_S = cel.Type.STRING
_B = cel.Type.BOOL
_I = cel.Type.INT
_L = cel.Type.List(cel.Type.DYN)
_M = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)

_QUANTITY = "__k8s_quantity__"
_URL = "__k8s_url__"
_IP = "__k8s_ip__"
_CIDR = "__k8s_cidr__"
_INT64 = (-(2**63), 2**63 - 1)


def _kind(value: Any) -> str:
    """The CEL type name of a value cel-expr-python handed to Python."""
    for python_type, name in _KINDS:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "bool"), (int, "int"), (float, "double"), (str, "string"), ((bytes, bytearray), "bytes"),
    (type(None), "null"), (list, "list"), (dict, "map"), (datetime.datetime, "timestamp"),
    (datetime.timedelta, "duration"),
)


def cel_equal(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality: int and double compare by value, other types never mix."""
    kind_a, kind_b = _kind(a), _kind(b)
    if {kind_a, kind_b} <= {"int", "double"}:
        return bool(a == b)
    if kind_a != kind_b:
        return False
    if kind_a == "list":
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind_a == "map":
        return len(a) == len(b) and all(
            any(cel_equal(k, kb) and cel_equal(v, b[kb]) for kb in b) for k, v in a.items()
        )
    return bool(a == b)


def cel_compare(a: Any, b: Any) -> int:
    """CEL ordering (-1, 0, 1) of two comparable values; an error for any other pair."""
    kind_a, kind_b = _kind(a), _kind(b)
    comparable = {kind_a, kind_b} <= {"int", "double"} or (
        kind_a == kind_b and kind_a in ("string", "bytes", "bool", "timestamp", "duration")
    )
    if not comparable:
        raise TypeError(f"no such overload: cannot compare {kind_a} with {kind_b}")
    return int(a > b) - int(a < b)


def _tagged(value: Any, tag: str, what: str) -> str:
    if isinstance(value, dict) and len(value) == 1 and tag in value:
        return str(value[tag])
    raise TypeError(f"no such overload: expected a {what}")


# --- lists ---------------------------------------------------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    return all(cel_compare(a, b) <= 0 for a, b in itertools.pairwise(items))


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    kinds = {_kind(item) for item in items}
    if len(kinds) != 1 or kinds.pop() not in ("int", "double", "duration"):
        raise TypeError("no such overload: sum() needs a list of one numeric or duration type")
    total = items[0]
    for item in items[1:]:
        total = total + item
    if isinstance(total, int) and not _INT64[0] <= total <= _INT64[1]:
        raise OverflowError("integer overflow")
    return total


def _extreme(items: list[Any], sign: int) -> Any:
    if not items:
        raise ValueError("min/max of an empty list")
    best = items[0]
    for item in items[1:]:
        if cel_compare(item, best) * sign > 0:
            best = item
    return best


def _index_of(items: list[Any], wanted: Any) -> int:
    return next((i for i, item in enumerate(items) if cel_equal(item, wanted)), -1)


def _last_index_of(items: list[Any], wanted: Any) -> int:
    found = [i for i, item in enumerate(items) if cel_equal(item, wanted)]
    return found[-1] if found else -1


def _sets_contains(items: list[Any], wanted: list[Any]) -> bool:
    return all(_index_of(items, w) >= 0 for w in wanted)


# --- regex (Go RE2 semantics on Python's re) -----------------------------------------------------

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# Constructs Python accepts with another meaning than RE2 (or that RE2 rejects): never guess.
_RE2_REJECTS = re.compile(r"\(\?(?:[=!>#]|<[=!]|P=)|\\[1-9]|[*+?}]\+|\(\?[a-zA-Z]*U|\\[pPQEC]")


@lru_cache(maxsize=512)
def _go_regex(pattern: str) -> re.Pattern[str]:
    """Translate an RE2 pattern to an equivalent Python one, or fail like RE2 would."""
    if _RE2_REJECTS.search(pattern):
        raise ValueError(f"error parsing regexp: unsupported construct in {pattern!r}")
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            out.append("\\Z" if pair == "\\z" else pair)
            i += 2
            continue
        if in_class and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end > 0 else ""
            if name not in _POSIX_CLASSES:
                raise ValueError(f"error parsing regexp: invalid character class in {pattern!r}")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            i += 1
            for literal in ("^", "]"):  # a leading `]` (after an optional `^`) is literal
                if pattern.startswith(literal, i):
                    out.append("\\]" if literal == "]" else literal)
                    i += 1
            continue
        if char == "]" and in_class:
            in_class = False
        elif in_class and char in "[&~|":
            char = "\\" + char  # literal in an RE2 class; Python reserves them for set operations
        elif char == "$" and not in_class and not multiline:
            char = "\\Z"  # RE2's `$` never matches before a trailing newline
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _find(text: str, pattern: str) -> str:
    match = _go_regex(pattern).search(text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's FindAllString: non-overlapping matches, no empty match right after a match."""
    regex = _go_regex(pattern)
    found: list[str] = []
    pos, prev_end = 0, -1
    while (limit < 0 or len(found) < limit) and pos <= len(text):
        match = regex.search(text, pos)
        if match is None:
            break
        accept = True
        if match.end() == pos:
            accept = match.start() != prev_end
            pos += 1
        else:
            pos = match.end()
        prev_end = match.end()
        if accept:
            found.append(match.group(0))
    return found


# --- URL (Go net/url ParseRequestURI + Parse) ----------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_PATH_SAFE = "-_.~$&+,/:;=@"
_PATH_VALID = set("!$&'()*+,;=:@[]" + _PATH_SAFE)


def _parse_url(text: str) -> dict[str, str]:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("URL parse error: invalid control character in URL")
    rest = text.split("#", 1)[0]
    scheme_match = _SCHEME.match(rest)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    rest = rest[scheme_match.end() :] if scheme_match else rest
    rest, query = rest.split("?", 1) if "?" in rest else (rest, "")
    if not rest.startswith("/"):
        if scheme:
            return {"scheme": scheme, "host": "", "path": "", "query": query, "opaque": rest}
        raise ValueError(f"URL parse error: parse {text!r}: invalid URI for request")
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = authority.rpartition("@")[2]
        port = host.rpartition("]")[2] if host.startswith("[") else host
        if ":" in port and not re.fullmatch(r"[0-9]*", port.rpartition(":")[2]):
            raise ValueError(f"URL parse error: invalid port in {host!r}")
    return {"scheme": scheme, "host": host, "path": rest, "query": query, "opaque": ""}


def _url(text: str) -> dict[str, str]:
    _parse_url(text)
    return {_URL: text}


def _is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except ValueError:
        return False
    return True


def _url_part(value: Any) -> dict[str, str]:
    return _parse_url(_tagged(value, _URL, "URL"))


def _hostname(value: Any) -> str:
    host = _url_part(value)["host"]
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(value: Any) -> str:
    host = _url_part(value)["host"]
    tail = host.rpartition("]")[2] if host.startswith("[") else host
    return tail.rpartition(":")[2] if ":" in tail else ""


def _escaped_path(value: Any) -> str:
    raw = _url_part(value)["path"]
    valid = all(c in _PATH_VALID or (c.isalnum() and c.isascii()) or c == "%" for c in raw)
    return raw if valid else quote(unquote(raw), safe=_PATH_SAFE)


def _query(value: Any) -> dict[str, list[str]]:
    pairs: dict[str, list[str]] = {}
    for part in _url_part(value)["query"].split("&"):
        if not part or ";" in part:
            continue
        key, _, val = part.partition("=")
        pairs.setdefault(unquote(key.replace("+", " ")), []).append(unquote(val.replace("+", " ")))
    return pairs


# --- quantity (k8s.io/apimachinery resource.Quantity) --------------------------------------------

def _cel_quantity(text: str) -> Fraction:
    """`quantity(text)`: the exact value, finer than 1n rounded away from zero (as upstream)."""
    value = parse_quantity(text)
    if value is None:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    nanos = abs(value) * 10**9
    if nanos.denominator != 1:
        rounded = Fraction(-(-nanos.numerator // nanos.denominator), 10**9)
        value = rounded if value > 0 else -rounded
    return value


def _quantity_of(value: Fraction) -> dict[str, str]:
    return {_QUANTITY: f"{value.numerator}/{value.denominator}"}


def _q(value: Any) -> Fraction:
    return Fraction(_tagged(value, _QUANTITY, "Quantity"))


def _q_operand(value: Any) -> Fraction:
    if isinstance(value, int) and not isinstance(value, bool):
        return Fraction(value)
    return _q(value)


def _is_integer(value: Any) -> bool:
    number = _q(value)
    return number.denominator == 1 and _INT64[0] <= number.numerator <= _INT64[1]


def _as_integer(value: Any) -> int:
    if not _is_integer(value):
        raise ValueError("cannot convert value to integer")
    return _q(value).numerator


def _approximate_float(value: Any) -> float:
    number = _q(value)
    try:
        return float(number)
    except OverflowError:
        return float("inf") if number > 0 else float("-inf")


def _compare_q(a: Any, b: Any) -> int:
    x, y = _q(a), _q(b)
    return (x > y) - (x < y)


# --- IP and CIDR (net/netip, without zones or IPv4-mapped IPv6) ----------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> Address:
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return address


def _parse_cidr(text: str) -> tuple[Address, int]:
    address, slash, bits = text.partition("/")
    if not slash or not re.fullmatch(r"0|[1-9][0-9]*", bits):
        raise ValueError(f"network address parse error: {text!r}")
    parsed = _parse_ip(address)
    if int(bits) > parsed.max_prefixlen:
        raise ValueError(f"network address parse error: bad bits in {text!r}")
    return parsed, int(bits)


def _ip(text: str) -> dict[str, str]:
    return {_IP: str(_parse_ip(text))}


def _cidr(text: str) -> dict[str, str]:
    address, bits = _parse_cidr(text)
    return {_CIDR: f"{address}/{bits}"}


def _valid(parse: Callable[[str], Any], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _addr(value: Any) -> Address:
    return ipaddress.ip_address(_tagged(value, _IP, "IP"))


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(_tagged(value, _CIDR, "CIDR"), strict=False)


def _global_unicast(value: Any) -> bool:
    address = _addr(value)
    if str(address) in ("0.0.0.0", "255.255.255.255", "::"):
        return False
    link_local = address.is_link_local and not address.is_multicast
    return not (address.is_loopback or address.is_multicast or link_local)


def _link_local_multicast(value: Any) -> bool:
    address = _addr(value)
    scope = "224.0.0.0/24" if address.version == 4 else "ff02::/16"
    return address in ipaddress.ip_network(scope)


def _contains_ip(cidr: Any, other: Any) -> bool:
    address = _parse_ip(other) if isinstance(other, str) else _addr(other)
    network = _network(cidr)
    return address.version == network.version and address in network


def _contains_cidr(cidr: Any, other: Any) -> bool:
    inner = ipaddress.ip_network(
        other if isinstance(other, str) else _tagged(other, _CIDR, "CIDR"), strict=False
    )
    outer = _network(cidr)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _to_string(value: Any) -> str:
    for tag in (_IP, _CIDR):
        if isinstance(value, dict) and len(value) == 1 and tag in value:
            return str(value[tag])
    raise TypeError("no such overload: string(map)")


# --- the declarations ----------------------------------------------------------------------------


def _sign(value: Any) -> int:
    number = _q(value)
    return int(number > 0) - int(number < 0)


def _cidr_ip(value: Any) -> dict[str, str]:
    return {_IP: _tagged(value, _CIDR, "CIDR").partition("/")[0]}


def _link_local_unicast(value: Any) -> bool:
    address = _addr(value)
    return address.is_link_local and not address.is_multicast


# name -> [(parameter types, result type, implementation)]; the first parameter is the receiver.
_MEMBERS: dict[str, list[tuple[list[Any], Any, Callable[..., Any]]]] = {
    "isSorted": [([_L], _B, _is_sorted)],
    "sum": [([_L], _D, _sum)],
    "min": [([_L], _D, lambda items: _extreme(items, -1))],
    "max": [([_L], _D, lambda items: _extreme(items, 1))],
    "indexOf": [([_L, _D], _I, _index_of)],
    "lastIndexOf": [([_L, _D], _I, _last_index_of)],
    "find": [([_S, _S], _S, _find)],
    "findAll": [([_S, _S], _L, _find_all), ([_S, _S, _I], _L, _find_all)],
    "getScheme": [([_D], _S, lambda url: _url_part(url)["scheme"])],
    "getHost": [([_D], _S, lambda url: _url_part(url)["host"])],
    "getHostname": [([_D], _S, _hostname)],
    "getPort": [([_D], _S, _port)],
    "getEscapedPath": [([_D], _S, _escaped_path)],
    "getQuery": [([_D], _D, _query)],
    "sign": [([_D], _I, _sign)],
    "isInteger": [([_D], _B, _is_integer)],
    "asInteger": [([_D], _I, _as_integer)],
    "asApproximateFloat": [([_D], cel.Type.DOUBLE, _approximate_float)],
    "add": [([_D, _D], _D, lambda a, b: _quantity_of(_q(a) + _q_operand(b)))],
    "sub": [([_D, _D], _D, lambda a, b: _quantity_of(_q(a) - _q_operand(b)))],
    "compareTo": [([_D, _D], _I, _compare_q)],
    "isLessThan": [([_D, _D], _B, lambda a, b: _compare_q(a, b) < 0)],
    "isGreaterThan": [([_D, _D], _B, lambda a, b: _compare_q(a, b) > 0)],
    "ip": [([_D], _D, _cidr_ip)],
    "family": [([_D], _I, lambda ip: _addr(ip).version)],
    "isUnspecified": [([_D], _B, lambda ip: _addr(ip).is_unspecified)],
    "isLoopback": [([_D], _B, lambda ip: _addr(ip).is_loopback)],
    "isLinkLocalMulticast": [([_D], _B, _link_local_multicast)],
    "isLinkLocalUnicast": [([_D], _B, _link_local_unicast)],
    "isGlobalUnicast": [([_D], _B, _global_unicast)],
    "containsIP": [([_D, _D], _B, _contains_ip)],
    "containsCIDR": [([_D, _D], _B, _contains_cidr)],
    "masked": [([_D], _D, lambda cidr: {_CIDR: str(_network(cidr))})],
    "prefixLength": [([_D], _I, lambda cidr: _network(cidr).prefixlen)],
}

_GLOBALS: dict[str, list[tuple[list[Any], Any, Callable[..., Any]]]] = {
    "sets.contains": [([_L, _L], _B, _sets_contains)],
    "sets.intersects": [([_L, _L], _B, lambda a, b: any(_index_of(a, x) >= 0 for x in b))],
    "sets.equivalent": [([_L, _L], _B, lambda a, b: _sets_contains(a, b) and _sets_contains(b, a))],
    "url": [([_S], _D, _url)],
    "isURL": [([_S], _B, _is_url)],
    "quantity": [([_S], _D, lambda text: _quantity_of(_cel_quantity(text)))],
    "isQuantity": [([_S], _B, is_quantity)],
    "ip": [([_S], _D, _ip)],
    "isIP": [([_S], _B, lambda text: _valid(_parse_ip, text))],
    "ip.isCanonical": [([_S], _B, lambda text: str(_parse_ip(text)) == text)],
    "cidr": [([_S], _D, _cidr)],
    "isCIDR": [([_S], _B, lambda text: _valid(_parse_cidr, text))],
    "string": [([_M], _S, _to_string)],
}


@lru_cache(maxsize=1)
def kubernetes_library() -> Any:
    """One cel-expr-python extension holding every Kubernetes library function."""
    overloads: dict[str, list[Any]] = {}
    for table, is_member in ((_MEMBERS, True), (_GLOBALS, False)):
        for name, signatures in table.items():
            for params, result, impl in signatures:
                overload_id = f"k8s_{'member' if is_member else 'global'}_{name}_{len(params)}"
                overloads.setdefault(name, []).append(
                    cel.Overload(overload_id, result, params, is_member=is_member, impl=impl)
                )
    declarations = [cel.FunctionDecl(name, found) for name, found in overloads.items()]
    return cel.CelExtension("kubernetes", declarations)
