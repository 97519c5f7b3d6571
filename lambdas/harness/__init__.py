"""The harness domain: harness definitions, invocations, the agent loop's steps, erasure.

Nothing in this package knows about Lambda events or API Gateway; AWS access sits behind the
adapters in ``harness.adapters``.
"""
