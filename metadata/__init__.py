"""Tessera's definition language: module packs in YAML become typed, immutable definitions.

Knows nothing about databases or HTTP. The stable surface is listed in ``__all__``.
"""

from __future__ import annotations

from metadata._cron import CronError, CronSchedule
from metadata._errors import DefinitionError, DefinitionProblem
from metadata._expressions import expression_names
from metadata._loader import discover_packs, load_project
from metadata._model import (
    RESERVED_PARAMETERS,
    SYSTEM_FIELDS,
    ActionDef,
    ActionKind,
    EntityDef,
    FieldDef,
    FieldType,
    FormDef,
    FormField,
    FormSection,
    ModuleDef,
    OnDelete,
    ProjectDef,
    RuleDef,
    RuleEvent,
    TransitionDef,
    WorkflowDef,
)
from metadata._schemas import all_schemas, schema_document
from metadata.fixtures import FixtureFile, load_fixture_files

__all__ = [
    "RESERVED_PARAMETERS",
    "SYSTEM_FIELDS",
    "ActionDef",
    "ActionKind",
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
    "schema_document",
]
