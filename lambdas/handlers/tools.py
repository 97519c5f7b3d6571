"""Tool dispatch: run one tool call of a model turn (a Map iteration of the agent loop)."""

from __future__ import annotations

from handlers.loop import function_deadline, loop_step

run_tool = loop_step(
    lambda loop, event, context: loop.run_tool(
        event["ids"], event["toolUseId"], int(event.get("phase", 0)), function_deadline(context)
    )
)
