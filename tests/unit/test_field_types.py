"""Every field type is complete in each registry, and its facts have one copy: the
definition language's keys and traits (metadata/_fieldkeys.py), the engine's kind
(engine/fieldtypes/), the entity schema's list of type names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.fieldtypes import WidgetKind, kind_of, registered_types
from metadata import FieldDef, FieldType
from metadata._fieldkeys import DEFAULT_MAX_LENGTH, TYPE_KEYS, TYPE_TRAITS

SCHEMAS = Path(__file__).parents[2] / "metadata" / "schemas"


def _field(field_type: FieldType) -> FieldDef:
    extra: dict[str, object] = {
        FieldType.ENUM: {"values": ("a", "bb")},
        FieldType.REFERENCE: {"to": "p.other"},
        FieldType.CHILDREN: {"entity": "p.line"},
        FieldType.DECIMAL: {"scale": 2},
        FieldType.AUTONUMBER: {"format": "N-{###}"},
    }.get(field_type, {})
    return FieldDef(name="f", type=field_type, label="F", **extra)  # type: ignore[arg-type]


def test_every_type_is_in_every_registry() -> None:
    every = set(FieldType)
    assert set(TYPE_KEYS) == every
    assert set(TYPE_TRAITS) == every
    assert registered_types() == {t.value for t in FieldType}
    schema = json.loads((SCHEMAS / "entity.schema.json").read_text(encoding="utf-8"))
    assert f'"{FieldType.AUTONUMBER.value}"' in json.dumps(schema)
    for field_type in FieldType:
        assert f'"{field_type.value}"' in json.dumps(schema), field_type


@pytest.mark.parametrize("field_type", list(FieldType))
def test_each_kind_answers_every_hook(field_type: FieldType) -> None:
    field = _field(field_type)
    kind = kind_of(field)
    assert isinstance(kind.json_schema(field), dict)
    assert callable(kind.coercer(field))
    assert callable(kind.computed_converter(field))
    assert isinstance(kind.widget(field), WidgetKind)
    assert isinstance(kind.filter_schema(field), dict)
    assert isinstance(kind.blank_is_empty, bool)
    default = kind.column_default(True)
    assert default is None or isinstance(default, str)
    parser = kind.filter_parser()
    assert parser is None or callable(parser)
    if field_type is not FieldType.CHILDREN:
        column = kind.column_type(field)
        if field_type in DEFAULT_MAX_LENGTH:  # one copy of each default length
            assert getattr(column, "length", None) == DEFAULT_MAX_LENGTH[field_type]


def test_traits_agree_with_the_engine() -> None:
    for field_type, traits in TYPE_TRAITS.items():
        kind = kind_of(_field(field_type))
        if traits.measure == "number":
            assert kind.filter_parser() is not None
        if kind.blank_is_empty:
            assert traits.textual
