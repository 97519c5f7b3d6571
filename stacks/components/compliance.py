"""Acknowledging cdk-nag findings (cdk-nag v3: ``Validations.of(construct).acknowledge``).

Each acknowledgement is made next to the construct it excuses and says why. These helpers only
spell rule ids: a finding of an IAM wildcard is acknowledged for one exact resource string.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

AWS_SOLUTIONS = "AwsSolutions"
NIST_800_53_R5 = "NIST.800.53.R5"
PCI_DSS_321 = "PCI.DSS.321"
#: The packs that carry the same rule (e.g. ``S3BucketReplicationEnabled``) under their own prefix.
COMPLIANCE_PACKS = (NIST_800_53_R5, PCI_DSS_321)


def acknowledge(construct: IConstruct, rules: str | Iterable[str], reason: str) -> None:
    """Acknowledge each rule id on ``construct`` and everything below it."""
    for rule in [rules] if isinstance(rules, str) else rules:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def in_compliance_packs(rule: str) -> list[str]:
    """``rule`` as the NIST 800-53 R5 and PCI DSS 3.2.1 packs name it (for rules both packs have)."""
    return [f"{pack}-{rule}" for pack in COMPLIANCE_PACKS]


def nist(rule: str) -> str:
    """A rule of the NIST 800-53 R5 pack only."""
    return f"{NIST_800_53_R5}-{rule}"


def acknowledge_wildcard_resource(grantee: iam.IGrantable, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for one wildcard resource in the grantee's policies.

    ``resource`` is spelled as cdk-nag prints it: ``<LogicalId.Arn>/actors/*`` for attributes,
    ``<AWS::Region>`` for pseudo parameters.
    """
    principal = grantee.grant_principal
    if not isinstance(principal, Construct):
        raise TypeError(f"{principal} is not a construct; acknowledge on its policy instead")
    acknowledge(principal, f"{AWS_SOLUTIONS}-IAM5[Resource::{resource}]", reason)


def arn_placeholder(construct: IConstruct, suffix: str = "") -> str:
    """How cdk-nag prints ``Fn::GetAtt [<logical id>, Arn]`` of the construct's resource, plus ``suffix``."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return f"<{Stack.of(resource).resolve(resource.logical_id)}.Arn>{suffix}"
