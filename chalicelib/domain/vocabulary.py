"""The shared vocabulary: limits, what a character may be, one definition per identifier and
text field, and the closed sets of values (statuses, senders, scopes).

Each identifier and text field has ONE definition here, used wherever the value arrives: in a
body, a query string, a path or an API key's binding. A value that one route accepts can then
never be one that another route refuses (a user who can start a session can be listed and
given a key).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, TypeAdapter, ValidationError

MAX_STEPS = 1000
MAX_MESSAGE_BYTES = 32 * 1024
MAX_PAGE_SIZE = 100
MAX_CURSOR_CHARS = 2048


# ---- text: what a character may be -----------------------------------------------------------
# Characters that render as nothing although Unicode files them as letters, symbols or marks
# (Hangul fillers, the blank Braille pattern, variation selectors, the grapheme joiner): in
# an id they make two different values look identical.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
# Zero-width (non-)joiners are format characters that real text needs: inside words of
# Persian and Indic scripts, and in emoji sequences such as 👩‍💻.
_JOINERS = frozenset("\u200c\u200d")
_LINE_BREAKS = frozenset("\t\n\r")


def _invisible(char: str) -> bool:
    return char in _BLANK or any(ord(char) in r for r in _VARIATION_SELECTORS)


def _named(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, '(unnamed)')}"


def _identifier(value: str) -> str:
    """Letters, marks, digits, punctuation and symbols only: no space, control, format
    (U+200B, U+202E, U+00AD, U+FEFF...), private-use, unassigned or invisible character."""
    for char in value:
        if _not_in_identifier(char):
            raise ValueError(f"must not contain {_named(char)}")
    return value


def _not_in_identifier(char: str) -> bool:
    return unicodedata.category(char)[0] in "CZ" or _invisible(char)


def _not_in_display_text(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Cf" and char not in _JOINERS)


def _not_in_long_text(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs") and char not in _LINE_BREAKS


def _display_text(value: str) -> str:
    """One line that people read: no control, format (but the joiners), private-use,
    unassigned or line-separator character, and at least one visible character."""
    for char in value:
        if _not_in_display_text(char):
            raise ValueError(f"must not contain {_named(char)}")
    if all(_not_in_identifier(c) for c in value):
        raise ValueError("must contain a visible character")
    return value


def _long_text(value: str) -> str:
    """Multi-line text (step content, chat messages): no control character but tab and line
    breaks (a NUL or an escape sequence is never content)."""
    for char in value:
        if _not_in_long_text(char):
            raise ValueError(f"must not contain {_named(char)}")
    return value


# ---- the same rules as JSON Schema patterns (for the OpenAPI document, built on request) --------
# Each pattern is derived from the predicate its validator applies, over every code point
# (this Python's Unicode database), so the document refuses exactly what the server refuses.
# Surrogates are left out: a JSON text cannot carry one (json_input refuses the escape).


@cache
def _runs() -> tuple[tuple[int, int], ...]:
    """Code points (surrogates left out) in runs that every predicate below treats alike: the
    same Unicode category, and each character a rule names (_BLANK, _JOINERS...) alone."""
    special = {ord(c) for c in _BLANK | _JOINERS | _LINE_BREAKS} | {p for r in _VARIATION_SELECTORS for p in r}
    category = unicodedata.category
    runs: list[tuple[int, int]] = []
    start, previous = 0, category("\0")
    for point in range(1, 0x110000):
        if 0xD800 <= point <= 0xDFFF:
            continue
        current = category(chr(point))
        if current != previous or point in special or start in special or point == 0xE000:
            runs.append((start, point - 1 if point != 0xE000 else 0xD7FF))
            start, previous = point, current
    runs.append((start, 0x10FFFF))
    return tuple(runs)


def _refused_class(refused: Callable[[str], bool]) -> str:
    """A regex character class body listing the code points `refused` is true for: BMP ones as
    \\uXXXX escapes (Python's `re` and ECMA-262 read them alike), others as the characters."""
    spans: list[tuple[int, int]] = []
    for first, last in _runs():
        if refused(chr(first)):
            if spans and spans[-1][1] == first - 1:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((first, last))

    def one(point: int) -> str:
        return f"\\u{point:04x}" if point <= 0xFFFF else chr(point)

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in spans)


@cache
def identifier_pattern() -> str:
    return f"^[^{_refused_class(_not_in_identifier)}]*$"


@cache
def display_text_pattern() -> str:
    # no refused character, and at least one that an identifier may hold (a visible one)
    line = _refused_class(_not_in_display_text)
    return f"^[^{line}]*[^{_refused_class(_not_in_identifier)}][^{line}]*$"


@cache
def long_text_pattern() -> str:
    return f"^[^{_refused_class(_not_in_long_text)}]*$"


# name -> the pattern's builder: a field of such text carries {"x-text": name} in its JSON
# Schema (small, also in MCP tool schemas); the OpenAPI document puts the pattern itself in one
# component per name, referenced by each such field (the patterns are kilobytes long)
TEXT_PATTERNS: dict[str, Callable[[], str]] = {
    "IdentifierText": identifier_pattern, "DisplayText": display_text_pattern, "LongText": long_text_pattern}


def _pattern(name: str) -> Any:
    if name not in TEXT_PATTERNS:  # a typo here is a bug, at import
        raise ValueError(name)
    return Field(json_schema_extra={"x-text": name})


def integral(value: object) -> object:
    """JSON Schema's `integer` includes 15.0 (a number whose fraction is zero): such a float is
    the integer it equals. Any other float, a bool or a string stays what it is (refused by
    the strict int it precedes)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def ascii_digits(value: object) -> object:
    """Query values are text: only 0-9 make an integer (int() would also take '²', '٣' or
    '５', and pydantic '5_000')."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


# ---- identifiers and text fields: one definition each --------------------------------------

# Resource ids travel in URL paths and key strings: keep them path-safe and bounded.
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
ResourceId = Annotated[str, StringConstraints(pattern=RESOURCE_ID_PATTERN)]
# User ids come from upstream identity systems (emails, subjects, names in any script).
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_identifier),
                  _pattern("IdentifierText")]
InboxId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
CaptureId = Annotated[str, StringConstraints(pattern=r"^req_[0-9a-f]{16,32}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_display_text),
                 _pattern("DisplayText")]
Name = Title  # names of keys and inboxes: the same rules as titles
StepContent = Annotated[str, StringConstraints(max_length=16_000), AfterValidator(_long_text),
                       _pattern("LongText")]
MessageText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_long_text), _pattern("LongText")]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CURSOR_CHARS)]
# A whole number in a JSON body: an int, or a float equal to one (JSON Schema's `integer`).
# Bounds go before the BeforeValidator(integral) (so that the JSON Schema says minimum/maximum):
# Annotated[int, Field(strict=True, ge=..., le=...), INTEGRAL]
INTEGRAL = BeforeValidator(integral)
StepNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS), INTEGRAL]
# Moments as answered: UTC, ISO 8601 / RFC 3339 with microseconds (clock.to_iso), "...Z"
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
PageLimit = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), BeforeValidator(ascii_digits)]


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def conforms(kind: Any, value: object) -> bool:
    """Whether `value` is a valid `kind` (one of the definitions above)."""
    try:
        _adapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


# ---- closed sets: the Literal is the definition, the tuple is derived from it --------------

SessionStatus = Literal["active", "completed", "ended", "abandoned"]
EndedStatus = Literal["completed", "ended", "abandoned"]
EndRequest = Literal["ended", "abandoned"]  # what a caller may end a session as
StepStatus = Literal["DONE", "ONGOING"]
Sender = Literal["user", "agent"]
Scope = Literal["read", "agent", "admin"]

SESSION_STATUSES: tuple[str, ...] = get_args(SessionStatus)
ENDED_STATUSES: tuple[str, ...] = get_args(EndedStatus)
ACTIVE = "active"
SCOPES: tuple[str, ...] = get_args(Scope)


def _utc_moment(value: object) -> object:
    """A moment as the API answers them (UTC, microseconds): keys compare as text, so
    `2026-01-01T10:00:00Z` must become `2026-01-01T10:00:00.000000Z` to sort right."""
    if not isinstance(value, str) or not re.fullmatch(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})", value):
        raise ValueError("must be a moment like 2026-01-31T09:30:00.000000Z (RFC 3339, with a time zone)")
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # Feb 30; or past year 9999 / before 0001 in UTC
        raise ValueError("must be a real date and time, in UTC between years 0001 and 9999") from exc
    return f"{moment.year:04d}{moment.strftime('-%m-%dT%H:%M:%S.%fZ')}"  # to_iso, fixed width


# A moment given by a caller (RFC 3339, any offset), kept as the API answers moments
Moment = Annotated[str, BeforeValidator(_utc_moment), Field(json_schema_extra={"format": "date-time"})]
