"""The measured tables in README.md and docs/ are generated from the committed results JSON
(benchmarks/report.py): a results file changed without regenerating the docs fails here."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_generated_blocks_match_the_committed_results(path):
    text = path.read_text()
    assert report.regenerate(text) == text, f"{path.name} is stale: run python benchmarks/report.py --readme"
