"""The write pipeline (``engine.writes.pipeline.EntityStore``): validate → derive → workflow
→ store → audit → asserts → effects, over the record store of ``engine.store``. The package
itself exports only what travels with a write (``engine.writes.context``), so that the
effects and the guard can name it without importing the pipeline."""

from __future__ import annotations

from engine.writes.context import CascadeStep, PreparedCreate, WriteContext

__all__ = ["CascadeStep", "PreparedCreate", "WriteContext"]
