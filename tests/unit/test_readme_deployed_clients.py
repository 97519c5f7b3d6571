"""The README's recipe for calling the deployed API must produce requests API Gateway accepts:
SigV4 for the execute-api service, and an Accept header that gets the binary event stream."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


class Sent(Exception):
    """Raised instead of sending: the request is inspected, nothing leaves the process."""


def _recipe() -> dict[str, Any]:
    text = README.read_text()
    section = text[text.index("### Calling the deployed API") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code, "the section has a python example"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    return namespace


def _capture(client: Any) -> dict[str, str]:
    seen: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        seen.update({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        seen["url"] = request.url
        raise Sent

    client.meta.events.register("before-send", capture)
    return seen


def test_the_readme_clients_sign_for_execute_api_and_accept_the_event_stream() -> None:
    recipe = _recipe()
    control, data = recipe["control"], recipe["data"]

    sent_control = _capture(control)
    with pytest.raises(Sent):
        control.list_harnesses()
    assert "/execute-api/aws4_request" in sent_control["Authorization"]
    assert sent_control["url"] == recipe["API_URL"] + "/harnesses"

    sent_data = _capture(data)
    with pytest.raises(Sent):
        data.invoke_harness(
            harnessArn="arn:aws:bedrock-agentcore:eu-west-1:123456789012:harness/demo-abcdefghij",
            runtimeSessionId="s" * 33,
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
        )
    assert "/execute-api/aws4_request" in sent_data["Authorization"]
    assert sent_data["Accept"] == "application/vnd.amazon.eventstream"
