#!/usr/bin/env python3
"""CDK entry point (``cdk synth`` / ``cdk deploy``); settings come from ``cdk.json`` context."""

from stacks.app_factory import build_app

app, _ = build_app()
app.synth()
