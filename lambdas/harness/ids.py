"""Identifiers and ARNs in the shapes the AgentCore contract uses."""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass

from harness import contract
from harness.canonical import text_digest
from harness.errors import ValidationError

_SUFFIX_ALPHABET = string.ascii_letters + string.digits
# Actor ids become DynamoDB partition keys and S3 prefixes: keep them to a safe alphabet.
ACTOR_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.@:-]{0,127}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Account:
    """Where harness ARNs live: the partition, region and account of the deployment."""

    partition: str
    region: str
    account_id: str

    def harness_arn(self, harness_id: str) -> str:
        return f"arn:{self.partition}:bedrock-agentcore:{self.region}:{self.account_id}:harness/{harness_id}"

    @classmethod
    def from_function_arn(cls, function_arn: str) -> Account:
        parts = function_arn.split(":")
        if len(parts) < 5:
            raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
        return cls(partition=parts[1], region=parts[3], account_id=parts[4])


def new_harness_id(harness_name: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(10))
    return f"{harness_name}-{suffix}"


def new_invocation_id() -> str:
    # A UUID is a valid Step Functions execution name (<= 80 chars, [A-Za-z0-9-]).
    return str(uuid.uuid4())


def new_erasure_id() -> str:
    return str(uuid.uuid4())


def harness_id_from_arn(harness_arn: str, account: Account) -> str:
    # The contract's pattern leaves the partition optional; an ARN of this deployment names one.
    arn_pattern = contract.pattern(contract.DATA_SERVICE, "HarnessArn")
    if not arn_pattern.fullmatch(harness_arn or "") or harness_arn.startswith("arn::"):
        raise ValidationError(
            "harnessArn is not a harness ARN (arn:aws:bedrock-agentcore:<region>:<account>:harness/<id>).",
        )
    _, _, _, region, account_id, resource = harness_arn.split(":", 5)
    if (region, account_id) != (account.region, account.account_id):
        raise ValidationError(
            f"harnessArn names region {region} and account {account_id}; "
            f"this deployment serves {account.region} / {account.account_id}.",
        )
    return resource.removeprefix("harness/")


def check_actor_id(actor_id: str) -> str:
    if not ACTOR_ID_RE.fullmatch(actor_id or ""):
        raise ValidationError(
            "actorId must be 1-128 characters of letters, digits and _ . @ : -, "
            "starting with a letter or digit.",
        )
    return actor_id


def actor_digest(actor_id: str) -> str:
    """A stable pseudonym for an actor, for records that must outlive the actor's data."""
    return text_digest(actor_id)
