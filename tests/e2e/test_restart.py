"""The local runtime keeps its state across a restart on the same state directory."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from e2e_support import (
    Api,
    RuntimeProcess,
    clients,
    create_harness,
    inline_tool,
    invoke,
    new_session_id,
    say,
    tool_result,
)

pytestmark = pytest.mark.e2e


def test_harnesses_sessions_and_receipts_survive_a_restart_and_paused_work_is_interrupted(
    start_runtime: Callable[[Path | None], RuntimeProcess], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    first = start_runtime(state_dir)
    control, data = clients(first.url or "")
    harness = create_harness(control, tools=[inline_tool("approve")])
    session = new_session_id()
    assert say(data, harness["arn"], session, "before the restart").stop_reason == "end_turn"
    paused = say(data, harness["arn"], session, "/tool approve {}")
    assert paused.stop_reason == "tool_use"
    (tool_use,) = paused.tool_uses

    erased_actor = "erin-restart"
    say(data, harness["arn"], new_session_id(), "to be erased", actor_id=erased_actor)
    erasure = Api(first.url or "").request("DELETE", f"/actors/{erased_actor}")
    assert erasure.status == 200, erasure.body
    erasure_id = erasure.json()["erasure"]["erasureId"]

    assert first.stop() == 0, first.log()
    state_file = state_dir / "state.json"
    assert state_file.is_file()
    json.loads(state_file.read_text())  # complete, not a half-written file
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700

    second = start_runtime(state_dir)
    control, data = clients(second.url or "")

    restored = control.get_harness(harnessId=harness["harnessId"])["harness"]
    assert restored["arn"] == harness["arn"]
    assert restored["tools"] == harness["tools"]

    # The paused invocation was ended as interrupted: its tool use can no longer be answered...
    with pytest.raises(ClientError) as stale:
        invoke(
            data,
            harness["arn"],
            session,
            [{"role": "user", "content": [tool_result(tool_use["toolUseId"], "ok")]}],
        )
    assert stale.value.response["Error"]["Code"] == "ValidationException"
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    # ...and the session is free again, with its earlier turns remembered.
    history = say(data, harness["arn"], session, "/history")
    assert history.stop_reason == "end_turn"
    assert history.text == "before the restart\n/tool approve {}\n/history"

    receipt = Api(second.url or "").request("GET", f"/actors/{erased_actor}/erasures/{erasure_id}")
    assert receipt.status == 200, receipt.body
    assert receipt.json()["erasure"]["erasureId"] == erasure_id
    assert receipt.json()["erasure"]["sealed"] is True
    assert second.stop() == 0, second.log()
