"""Pydantic building blocks shared by every domain's schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

# Row ids are 32-bit INTEGER columns on PostgreSQL: a bigger number is a malformed id, not a
# lookup (the driver would fail with an overflow). Board events have a 64-bit id.
MAX_ID = 2**31 - 1
MAX_EVENT_ID = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]{1,19}")
# Characters that show as nothing: a title made only of them looks empty on the board.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
_EDGE_BLANKS = re.compile(rf"^[\s{_INVISIBLE}]+|[\s{_INVISIBLE}]+$")


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (found an unpaired surrogate)") from None
    return value


def strip_blanks(value: object) -> object:
    """White space and invisible characters (zero-width space, BOM, …) off both ends."""
    return _EDGE_BLANKS.sub("", value) if isinstance(value, str) else value


def parse_decimal_id(value: str, maximum: int = MAX_ID) -> int | None:
    """The number in `value` if it is plain ASCII digits within 0..maximum, else None."""
    if not _DECIMAL.fullmatch(value):
        return None
    number = int(value)
    return number if number <= maximum else None


CleanStr = Annotated[str, AfterValidator(_clean_text)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


@dataclass(frozen=True, slots=True)
class TextLimits(GroupedMetadata):
    """Rules for text, used as `Annotated[str, TextLimits(...)]`: no NUL or unpaired surrogates,
    a length within bounds; with `strip`, blank ends (also invisible ones) are removed before the
    length is checked, so a title of zero-width spaces counts as empty."""

    min_length: int = 0
    max_length: int | None = None
    strip: bool = False

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(min_length=self.min_length, max_length=self.max_length)
        yield AfterValidator(_clean_text)
        if self.strip:
            yield BeforeValidator(strip_blanks)


class InputSchema(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class OutputSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# A route's `responses=`: status code -> its OpenAPI description (model, description, content).
Responses = dict[int | str, dict[str, Any]]


class ErrorResponse(BaseModel):
    """Every 4xx answer: `detail` says what is wrong in words a person can act on. Some errors
    add fields: `current` (a 409 on a changed task), `files` (a merge conflict)."""

    model_config = ConfigDict(extra="allow")

    detail: str = Field(examples=["Task 42 not found"])


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description='Where: the field\'s path, e.g. ["labels", "0"].', examples=[["title"]])
    msg: str = Field(examples=["String should have at least 1 character"])
    type: str | None = Field(default=None, description="The kind of problem, e.g. missing, string_too_short.")


class ValidationErrorResponse(ErrorResponse):
    """A 422: the request did not fit the schema. `detail` sums up every issue in one line."""

    errors: list[ValidationIssue] = Field(default_factory=list)
