"""The write pipeline (``pipeline.EntityStore``): validate → derive → workflow → store →
audit → asserts → effects, over the record store of ``engine.store``."""

from __future__ import annotations

from engine.writes.context import CascadeStep, PreparedCreate, WriteContext
from engine.writes.pipeline import EntityStore, StoreRegistry

__all__ = ["CascadeStep", "EntityStore", "PreparedCreate", "StoreRegistry", "WriteContext"]
