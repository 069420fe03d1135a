"""The drop-in contract starts with the public names."""

from __future__ import annotations

import openjd.sessions as reference

import openjd_notebook.sessions as ours


def test_exports_match_the_reference_exactly() -> None:
    assert sorted(ours.__all__) == sorted(reference.__all__)
    assert len(ours.__all__) == 18


def test_every_exported_name_exists() -> None:
    for name in ours.__all__:
        assert getattr(ours, name) is not None


def test_public_classes_claim_the_public_module() -> None:
    for name in ("Session", "ActionStatus", "ActionState", "SessionState", "PathMappingRule"):
        assert getattr(ours, name).__module__ == "openjd_notebook.sessions"


def test_enum_values_match_the_reference() -> None:
    for enum_name in ("ActionState", "SessionState", "PathFormat"):
        ours_values = {member.name: member.value for member in getattr(ours, enum_name)}
        reference_values = {member.name: member.value for member in getattr(reference, enum_name)}
        assert ours_values == reference_values
    assert [flag.name for flag in ours.LogContent] == [flag.name for flag in reference.LogContent]


def test_action_status_fields_start_like_the_reference() -> None:
    status = ours.ActionStatus(ours.ActionState.FAILED, 50.0, "halfway", "broke", 3)
    assert (status.progress, status.status_message, status.fail_message, status.exit_code) == (
        50.0,
        "halfway",
        "broke",
        3,
    )
    assert status == ours.ActionStatus(
        state=ours.ActionState.FAILED,
        progress=50.0,
        status_message="halfway",
        fail_message="broke",
        exit_code=3,
        pid=1234,
    )
