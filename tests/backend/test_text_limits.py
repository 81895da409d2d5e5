"""TextLimits: the text rules every schema's bounded strings share."""

from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from backend.kit.schemas import TextLimits

Stripped = TypeAdapter(Annotated[str, TextLimits(1, 5, strip=True)])
Kept = TypeAdapter(Annotated[str, TextLimits(0, 4)])


def test_strip_removes_blank_and_invisible_ends_before_the_length_is_checked():
    assert Stripped.validate_python("  \u200babcde\ufeff ") == "abcde"
    with pytest.raises(ValidationError, match="at least 1 character"):
        Stripped.validate_python(" \u200b\u200d ")


def test_without_strip_the_text_is_kept_as_sent_and_counted_whole():
    assert Kept.validate_python(" ab ") == " ab "
    with pytest.raises(ValidationError, match="at most 4 characters"):
        Kept.validate_python(" abc ")


@pytest.mark.parametrize("adapter", [Stripped, Kept])
def test_nul_and_unpaired_surrogates_are_refused(adapter):
    with pytest.raises(ValidationError, match="NUL"):
        adapter.validate_python("a\x00b")
    with pytest.raises(ValidationError):
        adapter.validate_python("a\ud800")
