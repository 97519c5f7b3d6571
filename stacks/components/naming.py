"""Stable logical ids for the resources other code looks up by name."""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import Construct


def pin_logical_id(construct: Construct, logical_id: str) -> None:
    """Give the construct's CloudFormation resource the logical id ``logical_id``.

    The local runtime finds tables, buckets, functions, the state machine and the API in the
    synthesized template by these ids, and a stable id keeps a refactoring of the construct tree
    from replacing a retained resource on the next deploy.
    """
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to name")
    resource.override_logical_id(logical_id)
