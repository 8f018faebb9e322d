"""Dashboards load with their pack; every tile is checked against the entity it reads,
and mistakes are reported at their key (file:line:col)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, TileKind, load_project

PACK = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          name: {type: string}
          amount: {type: decimal}
          stage: {type: enum, values: [open, won]}
          close_date: {type: date}
          notes: {type: text}
        """,
}
BOARD = "packs/sales/dashboards/pipeline.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_dashboard_loads_with_its_tiles() -> None:
    write(
        {
            BOARD: """\
                tiles:
                  - {label: Open, entity: deal, type: number, filter: {stage: open, amount__gt: 5}}
                  - label: By stage
                    entity: sales.deal
                    type: bar
                    group_by: stage
                    measure: amount__sum
                  - {label: Per month, entity: deal, type: line, group_by: close_date__month}
                """
        }
    )
    project = load_project(["sales"], [Path("packs")])
    board = project.dashboards["sales.pipeline"]
    assert board.label == "Pipeline"
    assert [t.kind for t in board.tiles] == [TileKind.NUMBER, TileKind.BAR, TileKind.LINE]
    assert board.tiles[0].filter == (("stage", "open"), ("amount__gt", "5"))
    assert board.tiles[1].entity == "sales.deal"
    assert board.tiles[1].measure == "amount__sum"


def test_each_mistake_is_reported_at_its_key() -> None:
    write(
        {
            BOARD: """\
                tiles:
                  - {label: A, entity: dael, type: number}
                  - {label: B, entity: deal, type: bar}
                  - {label: C, entity: deal, type: bar, group_by: notes}
                  - {label: D, entity: deal, type: bar, group_by: stage__month}
                  - {label: E, entity: deal, type: number, measure: stage__sum}
                  - {label: F, entity: deal, type: number, filter: {stge: open}}
                """
        }
    )
    with pytest.raises(DefinitionError) as raised:
        load_project(["sales"], [Path("packs")])
    problems = [str(p) for p in raised.value.problems]
    assert problems == [
        f"{BOARD}:2:24: no entity 'sales.dael' is enabled; did you mean 'sales.deal'?",
        f"{BOARD}:3:36: a bar tile needs group_by",
        f"{BOARD}:4:51: cannot group by 'notes', of type text",
        f"{BOARD}:5:51: 'stage__month': only date and datetime fields have buckets"
        " (year, month, day)",
        f"{BOARD}:6:53: cannot take sum of 'stage', of type enum",
        f"{BOARD}:7:52: sales.deal has no field 'stge'; did you mean 'stage'?",
    ]


def test_an_unknown_tile_type_is_a_schema_error() -> None:
    write({BOARD: "tiles:\n  - {label: G, entity: deal, type: pie}\n"})
    with pytest.raises(DefinitionError) as raised:
        load_project(["sales"], [Path("packs")])
    (problem,) = raised.value.problems
    assert str(problem).startswith(f"{BOARD}:2:")
    assert "pie" in str(problem)
