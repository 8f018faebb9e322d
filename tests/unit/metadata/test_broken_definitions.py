"""The corpus of broken definitions in tests/fixtures/broken: every problem is reported at
once, each at its file:line:col, and nothing else is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from metadata import DefinitionError, load_project

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "broken"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.yaml").is_file())


@pytest.mark.parametrize("case", CASES)
def test_broken_definitions_are_reported_at_their_source(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, reported = _load_case(case, monkeypatch)
    for expected in spec["expect"]:
        assert any(line.startswith(expected) for line in reported), (
            f"expected a problem starting with:\n  {expected}\nreported:\n  "
            + "\n  ".join(reported)
        )
    assert len(reported) == len(spec["expect"]), "\n".join(reported)


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 6


def _load_case(case: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], list[str]]:
    """The case's spec and the problems loading it reports, as ``file:line:col: message``."""
    folder = CORPUS / case
    spec = yaml.safe_load((folder / "case.yaml").read_text("utf-8"))
    monkeypatch.chdir(folder)
    customizations = spec.get("customizations")
    with pytest.raises(DefinitionError) as raised:
        load_project(
            spec["modules"],
            [Path("packs")],
            config_name="tessera.yaml",
            customizations=Path(customizations) if customizations else None,
            fixture_folders=spec.get("fixture_folders", ()),
        )
    return spec, [str(p) for p in raised.value.problems]


def test_a_failed_file_leaves_every_other_problem_reported_and_no_follow_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files that fail to parse or break their schema are reported, the rest of them and
    every other file is still checked, and nothing that names what failed (an entity, a
    field, a pack, a customization) reports a problem about it."""
    spec, reported = _load_case("failed_files", monkeypatch)
    assert reported == spec["expect"]
    assert not [line for line in reported if "unknown entity" in line]


def test_unreadable_yaml_is_a_problem_of_its_file_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NUL byte, nesting beyond any need, an alias inside itself and a "billion laughs"
    are each reported at their file, and the other files are still checked."""
    entities = tmp_path / "packs" / "shop" / "entities"
    entities.mkdir(parents=True)
    (entities.parent / "module.yaml").write_text('name: shop\nversion: "1.0.0"\n')
    (entities / "nul.yaml").write_text('fields:\n  a: {type: string, label: "x\x00y"}\n')
    (entities / "deep.yaml").write_text("fields: " + "[" * 500 + "]" * 500 + "\n")
    (entities / "loop.yaml").write_text("fields: &a {x: *a}\n")
    laughs = ["a0: &a0 [x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (entities / "laughs.yaml").write_text("\n".join([*laughs, "fields: {}", ""]))
    (entities / "fine.yaml").write_text(
        "fields:\n  ref: {type: reference, to: nul}\n  n: {type: integer, min: 5, max: 1}\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DefinitionError) as raised:
        load_project(["shop"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        "packs/shop/entities/deep.yaml:1:108: invalid YAML: values nested more than 100 "
        "levels deep",
        "packs/shop/entities/fine.yaml:3:27: min is greater than max",
        "packs/shop/entities/laughs.yaml:7:5: invalid YAML: aliases expand to more than "
        "1,000,000 values",
        "packs/shop/entities/loop.yaml:1:9: invalid YAML: an alias refers to a value that "
        "contains it",
        "packs/shop/entities/nul.yaml:2:30: invalid YAML: control characters are not allowed "
        "(character #x0000)",
    ]
