"""A ``file`` field's keys: ``accept`` and ``max_size`` read, mistakes at file:line:col."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from metadata import DefinitionError, FieldType, load_project

if TYPE_CHECKING:
    from pathlib import Path


def _pack(root: Path, fields: str) -> Path:
    pack = root / "p"
    (pack / "entities").mkdir(parents=True)
    (pack / "module.yaml").write_text("name: p\nlabel: P\nversion: 1.0.0\n")
    (pack / "entities" / "doc.yaml").write_text(f"label: Doc\nfields:\n{fields}")
    return root


def test_keys_are_read(tmp_path: Path) -> None:
    root = _pack(
        tmp_path,
        "  name: {type: string}\n"
        "  scan: {type: file, accept: [application/pdf, image/*], max_size: 2MB}\n"
        "  other: {type: file}\n",
    )
    entity = load_project(["p"], [root]).entity("p.doc")
    scan = entity.fields["scan"]
    assert scan.type is FieldType.FILE
    assert scan.accept == ("application/pdf", "image/*")
    assert scan.max_size == 2_000_000
    assert not scan.is_writable
    assert entity.fields["other"].accept is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  scan: {type: file, max_size: lots}\n", "max_size must be a size"),
        ("  scan: {type: file, accept: [pdf]}\n", "'pdf' is not a content type"),
        ("  scan: {type: file, required: true}\n", "key 'required' does not apply"),
        ("  scan: {type: file, default: x}\n", "key 'default' does not apply"),
        ("  name: {type: string, accept: [image/*]}\n", "key 'accept' does not apply"),
    ],
)
def test_mistakes_point_at_the_line(tmp_path: Path, line: str, message: str) -> None:
    root = _pack(tmp_path, line)
    with pytest.raises(DefinitionError) as failed:
        load_project(["p"], [root])
    text = str(failed.value)
    assert message in text
    assert "doc.yaml:3:" in text


def _customized(tmp_path: Path, overlay: str) -> Any:
    root = _pack(
        tmp_path,
        "  scan: {type: file, accept: [application/pdf, image/*], max_size: 2MB}\n",
    )
    custom = tmp_path / "custom" / "p"
    custom.mkdir(parents=True)
    (custom / "doc.yaml").write_text(overlay)
    return load_project(["p"], [root], customizations=tmp_path / "custom")


def test_a_customization_may_only_tighten_a_file_field(tmp_path: Path) -> None:
    project = _customized(tmp_path, "fields:\n  scan: {accept: [image/png], max_size: 500kB}\n")
    scan = project.entity("p.doc").fields["scan"]
    assert scan.accept == ("image/png",)
    assert scan.max_size == 500_000


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ("fields:\n  scan: {max_size: 5MB}\n", "max_size 5MB loosens the max_size 2000000 bytes"),
        ("fields:\n  scan: {accept: [text/html]}\n", "'text/html' is not among the types"),
        ("fields:\n  scan: {max_size: lots}\n", "max_size must be a size"),
    ],
)
def test_a_customization_cannot_loosen_a_file_field(
    tmp_path: Path, overlay: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as failed:
        _customized(tmp_path, overlay)
    assert message in str(failed.value)
    assert "doc.yaml:2:" in str(failed.value)
