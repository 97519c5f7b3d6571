"""Names: stable logical ids for the resources other code looks up by name, and the ARNs of this
account's resources that grants and conditions match."""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnResource, Stack
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


def colon_arn(scope: Construct, service: str, resource: str, resource_name: str) -> str:
    """The ARN ``arn:<partition>:<service>:<region>:<account>:<resource>:<resource_name>`` in the
    stack's account and region: the form of log groups, alarms, functions and secrets.
    ``resource_name`` may end in ``*`` to match every name with that prefix."""
    return Stack.of(scope).format_arn(
        service=service,
        resource=resource,
        resource_name=resource_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
