"""The documentation holds together: every "docs §N.M" cited in the code exists in
docs/mathematics.md, nothing points to files users do not have, and the API reference builds
with warnings as errors (when Sphinx is installed: ``make docs``, run by CI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    p
    for folder in ("stability", "examples", "benchmarks", "tests")
    for p in (ROOT / folder).rglob("*.py")
] + [ROOT / "README.md"]


def _sections() -> set[str]:
    """Section numbers of the mathematics page: headings (``## 4.``, ``### 4.3``) and the
    numbered anchors of §6 (``6.5`` is item 5 of section 6)."""
    text = (ROOT / "docs" / "mathematics.md").read_text()
    found: set[str] = set()
    current = None
    for line in text.splitlines():
        m = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if m:
            found.add(m.group(1))
            current = m.group(1) if "." not in m.group(1) else current
            continue
        item = re.match(r"(\d+)\. ", line)
        if item and current is not None:
            found.add(f"{current}.{item.group(1)}")
    return found


def test_every_cited_section_exists():
    sections = _sections()
    missing = []
    for path in SOURCES:
        for ref in re.findall(r"docs §(\d+(?:\.\d+)?)", path.read_text()):
            if ref not in sections:
                missing.append((path.relative_to(ROOT), ref))
    assert not missing, missing
    assert {"4.4", "6.5", "6.6", "7"} <= sections


def test_no_reference_to_files_users_do_not_have():
    bad = re.compile(r"curvature notes|MATH\.md|CURVATURE\.md|DATA_NOISE\.md|shared/spec|seeds/")
    hits = [
        (path.relative_to(ROOT), m.group(0))
        for path in SOURCES
        if path.name != "test_docs.py"
        for m in bad.finditer(path.read_text())
    ]
    assert not hits, hits


@pytest.mark.slow  # make docs builds it in CI; this is the same build under pytest
def test_the_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "html" / "api" / "noise.html").exists()
