"""Table tiles: a grid of one grouping (rows, ``group_by``) by another (``columns``), such
as a forecast by month of expected close and stage; their mistakes at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, TileKind, load_project

PACK = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          amount: {type: decimal}
          stage: {type: enum, values: [open, won]}
          close_date: {type: date}
          notes: {type: json}
        """,
}
BOARD = "packs/sales/dashboards/forecast.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_table_tile_groups_rows_by_columns() -> None:
    write(
        {
            BOARD: """\
                tiles:
                  - label: By month and stage
                    entity: deal
                    type: table
                    group_by: close_date__month
                    columns: stage
                    measure: amount__sum
                """
        }
    )
    (tile,) = load_project(["sales"], [Path("packs")]).dashboards["sales.forecast"].tiles
    assert (tile.kind, tile.group_by, tile.columns) == (
        TileKind.TABLE,
        "close_date__month",
        "stage",
    )


def test_table_mistakes_are_reported_at_their_keys() -> None:
    write(
        {
            BOARD: """\
                tiles:
                  - {label: A, entity: deal, type: table, group_by: stage}
                  - {label: B, entity: deal, type: bar, group_by: stage, columns: stage}
                  - {label: C, entity: deal, type: table, group_by: stage, columns: stge}
                  - {label: D, entity: deal, type: table, group_by: stage, columns: stage}
                  - {label: E, entity: deal, type: table, group_by: stage, columns: notes}
                  - {label: F, entity: deal, type: table, group_by: stage, columns: stage__month}
                """
        }
    )
    with pytest.raises(DefinitionError) as raised:
        load_project(["sales"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        f"{BOARD}:2:36: a table tile needs columns (and group_by, its rows)",
        f"{BOARD}:3:67: only a table tile has columns, not a bar tile",
        f"{BOARD}:4:69: sales.deal has no field 'stge'; did you mean 'stage'?",
        f"{BOARD}:5:69: the columns must be another grouping than the rows",
        f"{BOARD}:6:69: cannot group by 'notes', of type json",
        f"{BOARD}:7:69: 'stage__month': only date and datetime fields have buckets "
        "(year, month, day)",
    ]
