"""The names pack authors and plugins may import are pinned here: changing them is a
deliberate, visible decision."""

from __future__ import annotations

import engine
import metadata


def test_metadata_exports() -> None:
    assert set(metadata.__all__) == {
        "ADMIN_ROLE",
        "AMENDED_FROM",
        "DOCSTATUS",
        "DOCSTATUSES",
        "DOCUMENT_FIELDS",
        "DATE_BUCKETS",
        "FILTER_OPERATORS",
        "MEASURE_FUNCTIONS",
        "UNGROUPABLE",
        "measurable",
        "DashboardDef",
        "TileDef",
        "TileKind",
        "ViewDef",
        "RUN_AS_SYSTEM",
        "RUN_AS_USER",
        "access_index_advice",
        "AllOf",
        "AnyOf",
        "CompareOp",
        "Constant",
        "FieldComparison",
        "GrantDef",
        "NoneOf",
        "NumberAssign",
        "AssignDef",
        "AssignStrategy",
        "Permission",
        "RecordFilter",
        "RoleDef",
        "UserValue",
        "RESERVED_PACK_NAMES",
        "RESERVED_PARAMETERS",
        "SYSTEM_FIELDS",
        "ActionChecker",
        "ActionDef",
        "AdjustAction",
        "BalanceDef",
        "CalendarDef",
        "ParameterType",
        "ReportCheckDef",
        "ReportColumnDef",
        "ReportDef",
        "ReportParameterDef",
        "ReportSectionDef",
        "ReportTotalDef",
        "LEDGER_FIELDS",
        "LedgerDef",
        "LimitDef",
        "LookupDef",
        "LOOKUP_PARENT",
        "COMPANY_KEYS",
        "INSTANCE_NAMES",
        "PostAction",
        "CreateAction",
        "EmailAction",
        "RecordAction",
        "UpdateAction",
        "WebhookAction",
        "action_definition",
        "action_kind",
        "action_kinds",
        "CronError",
        "CronSchedule",
        "DefinitionError",
        "DefinitionProblem",
        "EntityDef",
        "FieldDef",
        "FieldType",
        "FixtureFile",
        "FormDef",
        "FormField",
        "FormSection",
        "ModuleDef",
        "OnDelete",
        "ProjectDef",
        "RuleDef",
        "RuleEvent",
        "TransitionDef",
        "WorkflowDef",
        "all_schemas",
        "discover_packs",
        "expression_names",
        "load_fixture_files",
        "load_project",
        "timezone_problem",
        "canonical_locale",
        "locale_problem",
        "schema_document",
    }
    for name in metadata.__all__:
        assert getattr(metadata, name) is not None


def test_engine_exports() -> None:
    assert set(engine.__all__) == {
        "BadQuery",
        "Conflict",
        "Database",
        "EngineError",
        "EngineModel",
        "EntityStore",
        "FieldError",
        "IntegrityViolation",
        "ListQuery",
        "ListResult",
        "RecordNotFound",
        "StaleVersion",
        "UnknownEntity",
        "ValidationFailed",
        "WriteContext",
        "dialect_for_url",
        "open_database",
    }
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_definitions_are_immutable() -> None:
    from pathlib import Path

    import pytest

    project = metadata.load_project(["kitchen"], [Path(__file__).parents[1] / "packs"])
    entity = project.entity("kitchen.item")
    with pytest.raises(AttributeError):
        entity.label = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entity.fields["x"] = entity.fields["name"]  # type: ignore[index]
