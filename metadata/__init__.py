"""Tessera's definition language: module packs in YAML become typed, immutable definitions.

Knows nothing about databases or HTTP. The stable surface is listed in ``__all__``.
"""

from __future__ import annotations

from metadata._advice import access_index_advice
from metadata._cron import CronError, CronSchedule
from metadata._errors import DefinitionError, DefinitionProblem
from metadata._expressions import expression_names
from metadata._loader import discover_packs, load_project
from metadata._model import (
    ADMIN_ROLE,
    RESERVED_PACK_NAMES,
    RESERVED_PARAMETERS,
    RUN_AS_SYSTEM,
    RUN_AS_USER,
    SYSTEM_FIELDS,
    ActionDef,
    ActionKind,
    AllOf,
    AnyOf,
    CompareOp,
    Constant,
    EntityDef,
    FieldComparison,
    FieldDef,
    FieldType,
    FormDef,
    FormField,
    FormSection,
    GrantDef,
    ModuleDef,
    NoneOf,
    OnDelete,
    Permission,
    ProjectDef,
    RecordFilter,
    RoleDef,
    RuleDef,
    RuleEvent,
    TransitionDef,
    UserValue,
    WorkflowDef,
)
from metadata._schemas import all_schemas, schema_document
from metadata.fixtures import FixtureFile, load_fixture_files

__all__ = [
    "ADMIN_ROLE",
    "RESERVED_PACK_NAMES",
    "RESERVED_PARAMETERS",
    "RUN_AS_SYSTEM",
    "RUN_AS_USER",
    "SYSTEM_FIELDS",
    "ActionDef",
    "ActionKind",
    "AllOf",
    "AnyOf",
    "CompareOp",
    "Constant",
    "CronError",
    "CronSchedule",
    "DefinitionError",
    "DefinitionProblem",
    "EntityDef",
    "FieldComparison",
    "FieldDef",
    "FieldType",
    "FixtureFile",
    "FormDef",
    "FormField",
    "FormSection",
    "GrantDef",
    "ModuleDef",
    "NoneOf",
    "OnDelete",
    "Permission",
    "ProjectDef",
    "RecordFilter",
    "RoleDef",
    "RuleDef",
    "RuleEvent",
    "TransitionDef",
    "UserValue",
    "WorkflowDef",
    "access_index_advice",
    "all_schemas",
    "discover_packs",
    "expression_names",
    "load_fixture_files",
    "load_project",
    "schema_document",
]
