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
        if unicodedata.category(char)[0] in "CZ" or _invisible(char):
            raise ValueError(f"must not contain {_named(char)}")
    return value


def _display_text(value: str) -> str:
    """One line that people read: no control, format (but the joiners), private-use,
    unassigned or line-separator character, and at least one visible character."""
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Cf" and char not in _JOINERS):
            raise ValueError(f"must not contain {_named(char)}")
    if all(unicodedata.category(c)[0] in "CZ" or _invisible(c) for c in value):
        raise ValueError("must contain a visible character")
    return value


def _long_text(value: str) -> str:
    """Multi-line text (step content, chat messages): no control character but tab and line
    breaks (a NUL or an escape sequence is never content)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in _LINE_BREAKS:
            raise ValueError(f"must not contain {_named(char)}")
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
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_identifier)]
InboxId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
CaptureId = Annotated[str, StringConstraints(pattern=r"^req_[0-9a-f]{16,32}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_display_text)]
Name = Title  # names of keys and inboxes: the same rules as titles
StepContent = Annotated[str, StringConstraints(max_length=16_000), AfterValidator(_long_text)]
MessageText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_long_text)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CURSOR_CHARS)]
StepNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS)]
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
