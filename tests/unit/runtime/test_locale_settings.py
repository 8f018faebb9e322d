"""The instance's ``locale:`` in tessera.yaml: one spelling, and an unknown locale refused
at its file:line:col."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from metadata import DefinitionError
from runtime.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path


def settings_with(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tessera.yaml"
    path.write_text(text, "utf-8")
    return Settings.load(path)


def test_the_default_locale_is_en_us_and_a_locale_is_written_one_way(tmp_path: Path) -> None:
    assert settings_with(tmp_path, "timezone: UTC\n").locale == "en_US"
    assert settings_with(tmp_path, "locale: de-de\n").locale == "de_DE"
    assert settings_with(tmp_path, "locale: fr_CH\n").locale == "fr_CH"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("de_XX", "de has: de_AT, de_BE, de_CH, de_DE"),
        ("klingon", ""),
        ('"de\\0DE"', ""),
        ("12", ""),
        ("[de_DE]", ""),
        ('"../../etc/passwd"', ""),
    ],
)
def test_an_unknown_locale_is_refused_where_it_is_written(
    tmp_path: Path, value: str, hint: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        settings_with(tmp_path, f"database_url: sqlite:///x.db\ntimezone: UTC\nlocale:  {value}\n")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, 10)
    assert "is not a locale (a language and country: de_DE, en_US, fr_CH)" in problem.message
    assert hint in problem.message
    assert str(problem).startswith(f"{tmp_path / 'tessera.yaml'}:3:10: locale: ")
