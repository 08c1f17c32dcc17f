"""The DQDL parser against the peer cases taken from AWS's reference DQDL parser (awslabs/dqdl tests).

The cases live beside the repository clone in ``shared/peer_cases/dqdl`` (``ENROLLMENT_SHARED_DIR``
overrides the ``shared`` folder). When they are missing the tests skip, except in CI (``CI=true``) where
they fail.

- ``valid/``: every file parses, and survives ``to_dqdl`` -> ``parse_ruleset`` unchanged.
- ``invalid/``: every file is rejected with a line and column inside the text.
- ``lenient/``: the reference accepts these only because its grammar does not require the end of input
  after the ruleset; we reject them on purpose, at the stray trailing `]`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from enrollment_platform.quality.dqdl import DQDLSyntaxError, check_ruleset, parse_ruleset, to_dqdl
from enrollment_platform.quality.dqdl.ast import Position, Rule, RuleNode, Ruleset

SHARED = Path(os.environ.get("ENROLLMENT_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
PEER = SHARED / "peer_cases" / "dqdl"
EXPECTED_COUNTS = {"valid": 400, "invalid": 139, "lenient": 9}


def _missing() -> None:
    reason = f"DQDL peer cases not found at {PEER} (set ENROLLMENT_SHARED_DIR to the shared folder)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _cases(kind: str) -> list:
    """The case files of one kind; a single placeholder (skip, or fail in CI) when they are missing."""
    folder = PEER / kind
    if not folder.is_dir():
        return [pytest.param(None, id=f"{kind}-missing")]
    return [pytest.param(p, id=f"{kind}/{p.name}") for p in sorted(folder.glob("*.dqdl"))]


def _need(path: Path | None) -> Path:
    if path is None:
        _missing()
    assert path is not None
    return path


def _manifest() -> dict[str, str]:
    path = PEER / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {row.split("\t")[0]: row.split("\t")[1] for row in rows if row}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _inside(text: str, line: int, column: int) -> bool:
    lines = text.split("\n")
    return 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1


_NOWHERE = Position(0, 0)


def _strip_node(node: RuleNode) -> RuleNode:
    if isinstance(node, Rule):
        return replace(node, position=_NOWHERE, text="")
    return replace(node, position=_NOWHERE, text="", rules=tuple(_strip_node(r) for r in node.rules))


def _strip(ruleset: Ruleset) -> Ruleset:
    return replace(
        ruleset,
        rules=tuple(_strip_node(n) for n in ruleset.rules),
        analyzers=tuple(_strip_node(a) for a in ruleset.analyzers),
        source="",
    )


def test_peer_cases_are_all_there():
    if not PEER.is_dir():
        _missing()
    counts = {kind: len(list((PEER / kind).glob("*.dqdl"))) for kind in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    kinds = _manifest()
    assert len(kinds) == sum(EXPECTED_COUNTS.values())
    assert sum(1 for k in kinds.values() if k == "grammar") == 70
    assert sum(1 for k in kinds.values() if k == "semantic") == 69


@pytest.mark.parametrize("path", _cases("valid"))
def test_valid_case_parses_and_round_trips(path: Path | None):
    path = _need(path)
    text = _read(path)
    ruleset = parse_ruleset(text, source=str(path))
    assert ruleset.rules or ruleset.analyzers
    exported = to_dqdl(ruleset)
    again = parse_ruleset(exported, source="<exported>")
    assert _strip(again) == _strip(ruleset), exported
    assert to_dqdl(again) == exported


@pytest.mark.parametrize("path", _cases("invalid"))
def test_invalid_case_is_rejected_with_a_position(path: Path | None):
    path = _need(path)
    text = _read(path)
    with pytest.raises(DQDLSyntaxError) as caught:
        parse_ruleset(text, source=path.name)
    error = caught.value
    assert error.message.strip()
    assert _inside(text, error.line, error.column), (error.line, error.column, text)
    assert str(error).startswith(f"{path.name}:{error.line}:{error.column}: ")
    _ruleset, errors = check_ruleset(text)
    assert errors and errors[0].message == error.message


@pytest.mark.parametrize("path", _cases("lenient"))
def test_lenient_case_is_rejected_at_the_stray_bracket(path: Path | None):
    path = _need(path)
    text = _read(path)
    stray = text.rstrip().rfind("]")
    assert stray > 0
    with pytest.raises(DQDLSyntaxError) as caught:
        parse_ruleset(text)
    error = caught.value
    assert error.message == "unexpected `]` after the end of the ruleset"
    assert (error.line, error.column) == (1, stray + 1)
    # Without the stray bracket the ruleset is fine.
    parse_ruleset(text[:stray] + text[stray + 1 :])
