"""The corpus of broken definitions in tests/fixtures/broken: every problem is reported at
once, each at its file:line:col, and nothing else is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from metadata import DefinitionError, load_project

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "broken"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.yaml").is_file())


@pytest.mark.parametrize("case", CASES)
def test_broken_definitions_are_reported_at_their_source(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = CORPUS / case
    spec = yaml.safe_load((folder / "case.yaml").read_text("utf-8"))
    monkeypatch.chdir(folder)
    with pytest.raises(DefinitionError) as raised:
        load_project(spec["modules"], [Path("packs")], config_name="tessera.yaml")
    reported = [str(p) for p in raised.value.problems]
    for expected in spec["expect"]:
        assert any(line.startswith(expected) for line in reported), (
            f"expected a problem starting with:\n  {expected}\nreported:\n  "
            + "\n  ".join(reported)
        )
    assert len(reported) == len(spec["expect"]), "\n".join(reported)


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 6
