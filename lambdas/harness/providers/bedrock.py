"""Amazon Bedrock through ConverseStream. The canonical message format is Converse's, so the
request needs no translation beyond inference settings and the tool configuration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.adapters.clients import client
from harness.providers.base import (
    ModelEvent,
    ModelRequest,
    ModelRequestError,
    ModelUnavailableError,
    Stop,
    TextDelta,
    ToolUseInputDelta,
    ToolUseStart,
    Usage,
)

# Bedrock's error codes that another model (or a later call) may not hit: fail over on these.
_TRANSIENT_CODES = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ModelNotReadyException",
    "ModelStreamErrorException",
}


EMPTY_REPLY = "(empty reply)"


def _without_blank_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bedrock rejects blank text blocks, which an empty model reply leaves in the history."""
    cleaned = []
    for message in messages:
        content = [b for b in message.get("content", []) if not ("text" in b and not b["text"].strip())]
        cleaned.append(message | {"content": content or [{"text": EMPTY_REPLY}]})
    return cleaned


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m.get("content", []))


class BedrockProvider:
    name = "bedrock"

    def stream(self, request: ModelRequest) -> Iterator[ModelEvent]:
        config = request.model_config["bedrockModelConfig"]
        inference = {key: config[key] for key in ("maxTokens", "temperature", "topP") if key in config}
        kwargs: dict[str, Any] = {
            "modelId": config["modelId"],
            "messages": _without_blank_text(request.messages),
        }
        if inference:
            kwargs["inferenceConfig"] = inference
        if request.system:
            kwargs["system"] = [{"text": text} for text in request.system]
        if request.tools:
            kwargs["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": t.name,
                            "description": t.description,
                            "inputSchema": {"json": t.input_schema},
                        }
                    }
                    for t in request.tools
                ]
            }
        elif _has_tool_blocks(request.messages):
            # Bedrock rejects a history with tool blocks unless toolConfig is present.
            raise ModelRequestError("the conversation contains tool calls but no tools are configured")
        if config.get("additionalParams"):
            kwargs["additionalModelRequestFields"] = config["additionalParams"]
        try:
            response = client("bedrock-runtime").converse_stream(**kwargs)
            tool_ids: dict[int, str] = {}
            for event in response["stream"]:
                if "contentBlockStart" in event:
                    start = event["contentBlockStart"]
                    tool = start.get("start", {}).get("toolUse")
                    if tool:
                        tool_ids[start["contentBlockIndex"]] = tool["toolUseId"]
                        yield ToolUseStart(tool_use_id=tool["toolUseId"], name=tool["name"])
                elif "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"]
                    if "text" in delta["delta"]:
                        yield TextDelta(delta["delta"]["text"])
                    elif "toolUse" in delta["delta"]:
                        yield ToolUseInputDelta(
                            tool_use_id=tool_ids[delta["contentBlockIndex"]],
                            input_json=delta["delta"]["toolUse"]["input"],
                        )
                elif "messageStop" in event:
                    yield Stop(event["messageStop"]["stopReason"])
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                    yield Usage(usage.get("inputTokens", 0), usage.get("outputTokens", 0))
        except ClientError as error:
            code = error.response["Error"]["Code"]
            # In-stream errors arrive with camel-cased names (modelStreamErrorException).
            code = code[:1].upper() + code[1:]
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _TRANSIENT_CODES or status == 429 or status >= 500:
                raise ModelUnavailableError(f"Bedrock is unavailable ({code})") from None
            raise ModelRequestError(f"Bedrock rejected the model call ({code})") from None
        except BotoCoreError as error:
            raise ModelUnavailableError(f"Bedrock could not be reached ({type(error).__name__})") from None
