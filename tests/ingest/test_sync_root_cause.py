"""A failed sync's error says what actually went wrong: the leaf of the TaskGroup's
ExceptionGroup (type and message), not "unhandled errors in a TaskGroup"."""

from __future__ import annotations

import asyncio

import pytest

from backend.ingest.sync import root_cause


async def _pipeline_failing_with(error: Exception) -> None:
    async def stage_that_fails() -> None:
        raise error

    async def stage_that_waits() -> None:
        await asyncio.sleep(10)

    async with asyncio.TaskGroup() as group:
        group.create_task(stage_that_waits())
        group.create_task(stage_that_fails())


async def test_a_task_group_failure_is_reported_by_its_leaf() -> None:
    with pytest.raises(ExceptionGroup) as caught:
        await _pipeline_failing_with(PermissionError("cannot write /data/objects/acme"))
    assert "TaskGroup" in str(caught.value)
    assert root_cause(caught.value) == "PermissionError: cannot write /data/objects/acme"


def test_nested_groups_are_unwrapped_and_cancellations_skipped() -> None:
    nested = ExceptionGroup(
        "outer",
        [ExceptionGroup("inner", [ValueError("bad page cursor")]), RuntimeError("second")],
    )
    assert root_cause(nested) == "ValueError: bad page cursor"
    mixed = BaseExceptionGroup("g", [asyncio.CancelledError(), KeyError("id")])
    assert root_cause(mixed) == "KeyError: 'id'"
    assert root_cause(OSError("disk full")) == "OSError: disk full"
    assert len(root_cause(RuntimeError("x" * 1000))) == 300
