"""Byte-level encodings of InvokeHarness response streams: AWS event-stream frames and SSE."""
