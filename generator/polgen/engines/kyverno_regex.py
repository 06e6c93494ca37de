"""Go's regexp (RE2 syntax, Perl flags) run on Python's `re`, for Kyverno's regex functions.

The two engines disagree in ways a policy notices: Python's `$` also matches before a final
newline, its `\\d` `\\w` `\\s` `\\b` are Unicode-aware, `{,3}` is a repetition and backreferences,
lookarounds, possessive and atomic groups exist. So a Go pattern is parsed the way
regexp/syntax parses it and re-emitted atom by atom as an equivalent Python pattern: every
construct Go rejects raises RegexError (Kyverno reports the rule as error), and so does one Go
accepts that polgen does not translate (`\\p{Greek}`), rather than matching differently.
`replace_all` follows Go's ReplaceAll: an empty match right after a match is not replaced, and
`$1` / `${name}` expand the way Regexp.Expand does.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

_MAX_REPEAT = 1000
_MAX_RUNE = 0x10FFFF
_WORD = "[0-9A-Za-z_]"
_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"

Ranges = list[tuple[int, int]]

_PERL: dict[str, Ranges] = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_POSIX: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
_NAME = re.compile(r"\A[A-Za-z0-9_]+\Z")
_REPEAT = re.compile(r"\{(0|[1-9]\d*)(,(0|[1-9]\d*)?)?\}")


class RegexError(ValueError):
    """A pattern Go's regexp rejects, or one polgen cannot run the way Go would."""


@dataclass(frozen=True)
class GoRegexp:
    """A compiled Go pattern: the Python equivalent and the name of every capture group."""

    compiled: re.Pattern[str]
    names: tuple[str, ...]

    def search(self, text: str) -> bool:
        return self.compiled.search(text) is not None


@dataclass
class _Flags:
    fold: bool = False
    multiline: bool = False
    dot_nl: bool = False
    ungreedy: bool = False


@dataclass
class _Parser:
    source: str
    position: int = 0
    names: list[str] = field(default_factory=list)

    def error(self, message: str) -> RegexError:
        return RegexError(f"error parsing regexp: {message}: `{self.source}`")

    def peek(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.source[index] if index < len(self.source) else ""

    def take(self) -> str:
        char = self.peek()
        self.position += 1
        return char


@cache
def compile_go(pattern: str) -> GoRegexp:
    """regexp.Compile(pattern) as a Python pattern; RegexError where Go (or polgen) fails."""
    parser = _Parser(pattern)
    try:
        body = _group(parser, _Flags(), top=True)
    except RecursionError as exc:
        raise parser.error("expression nests too deeply") from exc
    try:
        return GoRegexp(re.compile(body), tuple(parser.names))
    except (re.error, RecursionError) as exc:
        raise parser.error(f"cannot run on Python's re ({exc})") from exc


def _group(parser: _Parser, flags: _Flags, top: bool) -> str:
    """Alternatives up to the `)` that closes this group (or the end of the pattern)."""
    flags = _Flags(**vars(flags))
    alternatives: list[list[str]] = [[]]
    pieces = alternatives[-1]
    last_repeat = False
    while parser.position < len(parser.source):
        char = parser.peek()
        if char == ")":
            if top:
                raise parser.error("unexpected )")
            parser.take()
            return "|".join("".join(p) for p in alternatives)
        repeat = char in "*+?" or (char == "{" and _repeat_bounds(parser) is not None)
        if repeat:
            if last_repeat:
                raise parser.error("invalid nested repetition operator")
            if not pieces:
                raise parser.error("missing argument to repetition operator")
            pieces[-1] = f"(?:{pieces[-1]}){_quantifier(parser, flags)}"
            last_repeat = True
            continue
        last_repeat = False
        if char == "|":
            parser.take()
            alternatives.append([])
            pieces = alternatives[-1]
        elif char == "(":
            atom = _open(parser, flags)
            if atom is not None:
                pieces.append(atom)
        else:
            pieces.extend(_atoms(parser, flags))
    if not top:
        raise parser.error("missing closing )")
    return "|".join("".join(p) for p in alternatives)


def _quantifier(parser: _Parser, flags: _Flags) -> str:
    char = parser.take()
    if char == "{":
        low, high, length = _repeat_bounds(parser, -1) or (0, 0, 0)
        parser.position += length - 1
        if low > _MAX_REPEAT or high > _MAX_REPEAT or (high >= 0 and low > high):
            raise parser.error("invalid repeat count")
        text = f"{{{low}}}" if high == low else f"{{{low},{'' if high < 0 else high}}}"
    else:
        text = char
    lazy = flags.ungreedy
    if parser.peek() == "?":
        parser.take()
        lazy = not lazy
    return text + ("?" if lazy else "")


def _repeat_bounds(parser: _Parser, offset: int = 0) -> tuple[int, int, int] | None:
    """(min, max or -1, length) of a `{n}`, `{n,}`, `{n,m}` at the cursor; None: a literal `{`."""
    found = _REPEAT.match(parser.source, parser.position + offset)
    if found is None:
        return None
    low = int(found.group(1))
    high = low if found.group(2) is None else int(found.group(3) or -1)
    return min(low, 10**8), min(high, 10**8), len(found.group(0))


def _open(parser: _Parser, flags: _Flags) -> str | None:
    """A group: capturing, named, non-capturing, or a flag change (None: nothing to emit)."""
    parser.take()
    if parser.peek() != "?":
        parser.names.append("")
        return f"({_group(parser, flags, top=False)})"
    rest = parser.source[parser.position + 1 :]
    if rest.startswith(("P<", "<")) and not rest.startswith(("<=", "<!")):
        start = 2 if rest.startswith("P<") else 1
        end = rest.find(">")
        name = rest[start:end] if end >= 0 else ""
        if end < 0 or not _NAME.match(name):
            raise parser.error("invalid named capture")
        parser.position += 1 + end + 1
        parser.names.append(name)
        return f"({_group(parser, flags, top=False)})"
    parser.take()
    changed = _Flags(**vars(flags))
    negate = False
    saw_flag = False
    while True:
        char = parser.take()
        if char in ("i", "m", "s", "U"):
            attribute = {"i": "fold", "m": "multiline", "s": "dot_nl", "U": "ungreedy"}[char]
            setattr(changed, attribute, not negate)
            saw_flag = True
        elif char == "-" and not negate:
            negate, saw_flag = True, False
        elif char in (":", ")") and not (negate and not saw_flag):
            if char == ":":
                return f"(?:{_group(parser, changed, top=False)})"
            vars(flags).update(vars(changed))
            return None
        else:
            raise parser.error("invalid or unsupported Perl syntax")


def _atoms(parser: _Parser, flags: _Flags) -> list[str]:
    """One atom (a `\\Q...\\E` run gives one per character) as Python pattern text."""
    char = parser.peek()
    if char != "\\":
        parser.take()
        if char in ("^", "$"):
            if flags.multiline:
                return [f"(?m:{char})"]
            return ["\\A" if char == "^" else "\\Z"]
        if char == ".":
            return ["(?s:.)" if flags.dot_nl else "."]
        if char == "[":
            return [_folded(_class(parser), flags)]
        return [_literal(ord(char), flags)]
    following = parser.peek(1)
    if following in ("A", "z", "b", "B"):
        parser.position += 2
        return [{"A": "\\A", "z": "\\Z", "b": _BOUNDARY, "B": _NOT_BOUNDARY}[following]]
    if following == "Q":
        end = parser.source.find("\\E", parser.position + 2)
        end = len(parser.source) if end < 0 else end
        literal = parser.source[parser.position + 2 : end]
        parser.position = min(end + 2, len(parser.source))
        return [_literal(ord(c), flags) for c in literal]
    perl = _perl_class(parser)
    if perl is not None:
        return [_folded(perl, flags)]
    return [_literal(_escape(parser), flags)]


def _literal(code: int, flags: _Flags) -> str:
    text = re.escape(chr(code))
    return f"(?i:{text})" if flags.fold else text


def _folded(text: str, flags: _Flags) -> str:
    return f"(?i:{text})" if flags.fold else text


def _perl_class(parser: _Parser) -> str | None:
    """`\\d \\D \\s \\S \\w \\W` (ASCII, as in Go) after a backslash; `\\p`/`\\P` is refused."""
    letter = parser.peek(1)
    if letter in ("p", "P"):
        raise parser.error("Unicode classes (\\p, \\P) are not supported by polgen")
    if letter.lower() not in _PERL:
        return None
    parser.position += 2
    return _class_text(_PERL[letter.lower()], negated=letter.isupper())


def _escape(parser: _Parser) -> int:
    """Go's parseEscape: the code point of a one-character escape after the backslash."""
    parser.take()
    char = parser.take()
    if char == "":
        raise parser.error("trailing backslash at end of expression")
    if char in "1234567" and parser.peek() not in tuple(_OCTAL):
        raise parser.error("invalid escape sequence (backreferences are not supported)")
    if char in _OCTAL:
        digits = char
        while len(digits) < 3 and parser.peek() and parser.peek() in _OCTAL:
            digits += parser.take()
        return int(digits, 8)
    if char == "x":
        return _hex_escape(parser)
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char]
    if ord(char) < 0x80 and not char.isalnum():
        return ord(char)
    raise parser.error(f"invalid escape sequence: \\{char}")


def _hex_escape(parser: _Parser) -> int:
    if parser.peek() == "{":
        end = parser.source.find("}", parser.position)
        digits = parser.source[parser.position + 1 : end] if end > 0 else ""
        if not digits or any(d not in _HEX for d in digits) or int(digits, 16) > _MAX_RUNE:
            raise parser.error("invalid escape sequence: \\x{...}")
        parser.position = end + 1
        return int(digits, 16)
    digits = parser.source[parser.position : parser.position + 2]
    if len(digits) < 2 or any(d not in _HEX for d in digits):
        raise parser.error("invalid escape sequence: \\x")
    parser.position += 2
    return int(digits, 16)


def _class(parser: _Parser) -> str:
    """A bracket class after its `[`: items, ranges, POSIX and Perl classes, Go's escapes."""
    negated = parser.peek() == "^"
    if negated:
        parser.take()
    parts: list[str] = []
    first = True
    while first or parser.peek() != "]":
        if parser.peek() == "":
            raise parser.error("missing closing ]")
        first = False
        named = _posix_class(parser)
        if named is not None:
            parts.append(named)
            continue
        perl = _perl_class(parser) if parser.peek() == "\\" else None
        if perl is not None:
            parts.append(perl)
            continue
        low = _class_char(parser)
        high = low
        if parser.peek() == "-" and parser.peek(1) not in ("]", ""):
            parser.take()
            high = _class_char(parser)
            if high < low:
                raise parser.error("invalid character class range")
        parts.append(_class_text([(low, high)], negated=False))
    parser.take()
    union = "|".join(parts)
    return f"(?!{union})(?s:.)" if negated else f"(?:{union})"


def _posix_class(parser: _Parser) -> str | None:
    rest = parser.source[parser.position :]
    if not rest.startswith("[:"):
        return None
    end = rest.find(":]", 2)
    if end < 0:
        return None
    name = rest[2:end]
    negated = name.startswith("^")
    ranges = _POSIX.get(name.removeprefix("^"))
    if ranges is None:
        raise parser.error(f"invalid character class range: [:{name}:]")
    parser.position += end + 2
    return _class_text(ranges, negated)


def _class_char(parser: _Parser) -> int:
    if parser.peek() == "\\":
        return _escape(parser)
    return ord(parser.take())


def _class_text(ranges: Ranges, negated: bool) -> str:
    body = "".join(
        f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges
    )
    return f"[{'^' if negated else ''}{body}]"


def replace_all(pattern: GoRegexp, source: str, template: str, literal: bool) -> str:
    """Regexp.ReplaceAll(String/Literal): an empty match that abuts the previous match is
    skipped, and every search starts where Go's does."""
    output: list[str] = []
    last_end = 0
    search_at = 0
    while search_at <= len(source):
        found = pattern.compiled.search(source, search_at)
        if found is None:
            break
        start, end = found.span()
        output.append(source[last_end:start])
        if end > last_end or start == 0:
            output.append(template if literal else expand(pattern, template, found))
        last_end = end
        search_at = end if end > search_at else search_at + 1
    output.append(source[last_end:])
    return "".join(output)


def expand(pattern: GoRegexp, template: str, found: re.Match[str]) -> str:
    """Regexp.Expand: `$$` is `$`, `$name` takes the longest run of letters, digits and `_`,
    `${name}` is braced; an unknown group is empty and a malformed `$` stays literal."""
    output: list[str] = []
    rest = template
    while "$" in rest:
        before, _, rest = rest.partition("$")
        output.append(before)
        if rest.startswith("$"):
            output.append("$")
            rest = rest[1:]
            continue
        name, remainder = _reference(rest)
        if name is None:
            output.append("$")
            continue
        rest = remainder
        output.append(_group_text(pattern, name, found))
    output.append(rest)
    return "".join(output)


def _reference(text: str) -> tuple[str | None, str]:
    braced = text.startswith("{")
    body = text[1:] if braced else text
    length = 0
    while length < len(body) and _name_char(body[length]):
        length += 1
    if length == 0 or (braced and body[length : length + 1] != "}"):
        return None, text
    return body[:length], body[length + (1 if braced else 0) :]


def _name_char(char: str) -> bool:
    return char == "_" or char.isalpha() or unicodedata.category(char) == "Nd"


def _group_text(pattern: GoRegexp, name: str, found: re.Match[str]) -> str:
    if name.isascii() and name.isdigit() and not (len(name) > 1 and name.startswith("0")):
        number = int(name)
        if number <= len(pattern.names) and found.start(number) >= 0:
            return found.group(number)
        return ""
    for index, group_name in enumerate(pattern.names, start=1):
        if group_name == name and found.start(index) >= 0:
            return found.group(index)
    return ""
