from __future__ import annotations

import pytest

from metadata.semver import Version


def test_precedence_follows_semver_org() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    parsed = [Version.parse(v) for v in ordered]
    assert sorted(parsed[5:] + parsed[:5]) == parsed
    assert Version.parse("1.0.0+build.5") == Version.parse("1.0.0")


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01"])
def test_rejects_what_is_not_semver(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)
