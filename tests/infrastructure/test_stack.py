"""What other code relies on: stable logical ids and the stack outputs."""

from __future__ import annotations

import pytest

from .synthesis import Synthesized

#: Logical id -> type. The local runtime finds these resources by logical id.
STABLE_LOGICAL_IDS = {
    "EncryptionKey": "AWS::KMS::Key",
    "AuditMacKey": "AWS::KMS::Key",
    "HarnessTable": "AWS::DynamoDB::Table",
    "MemoryTable": "AWS::DynamoDB::Table",
    "AccessLogsBucket": "AWS::S3::Bucket",
    "AuditBucket": "AWS::S3::Bucket",
    "ArtifactBucket": "AWS::S3::Bucket",
    "ApiFunction": "AWS::Lambda::Function",
    "LoadContextFunction": "AWS::Lambda::Function",
    "CallModelFunction": "AWS::Lambda::Function",
    "AuthorizeToolCallsFunction": "AWS::Lambda::Function",
    "RunToolFunction": "AWS::Lambda::Function",
    "AwaitClientFunction": "AWS::Lambda::Function",
    "FinalizeFunction": "AWS::Lambda::Function",
    "RecordFailureFunction": "AWS::Lambda::Function",
    "ErasureFunction": "AWS::Lambda::Function",
    "AgentLoop": "AWS::StepFunctions::StateMachine",
    "HarnessApi": "AWS::ApiGateway::RestApi",
}


@pytest.mark.parametrize(("logical_id", "resource_type"), STABLE_LOGICAL_IDS.items())
def test_resources_other_code_looks_up_have_stable_logical_ids(
    each_configuration: Synthesized, logical_id: str, resource_type: str
) -> None:
    assert each_configuration.resources[logical_id]["Type"] == resource_type


def test_every_api_gateway_resource_is_named_after_the_api(synthesized: Synthesized) -> None:
    for logical_id, resource in synthesized.resources.items():
        if resource["Type"].startswith("AWS::ApiGateway::"):
            assert logical_id.startswith("HarnessApi"), logical_id


def test_outputs_tell_operators_where_everything_is(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    assert outputs["HarnessTableName"]["Value"] == {"Ref": "HarnessTable"}
    assert outputs["MemoryTableName"]["Value"] == {"Ref": "MemoryTable"}
    assert outputs["AuditBucketName"]["Value"] == {"Ref": "AuditBucket"}
    assert outputs["ArtifactBucketName"]["Value"] == {"Ref": "ArtifactBucket"}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "AgentLoop"}
    assert outputs["EncryptionKeyArn"]["Value"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    assert outputs["VaultSecretPrefix"]["Value"] == "AgentHarness/vault/"
    url_parts = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert {"Ref": "HarnessApi"} in url_parts
    stage = next(
        p["Ref"] for p in url_parts if isinstance(p, dict) and p.get("Ref", "").startswith("HarnessApiDeploy")
    )
    assert synthesized.resources[stage]["Properties"]["StageName"] == "v1"


def test_no_resource_has_a_hard_coded_physical_name(synthesized: Synthesized) -> None:
    name_properties = {
        "TableName",
        "BucketName",
        "FunctionName",
        "StateMachineName",
        "RoleName",
        "LogGroupName",
    }
    for logical_id, resource in synthesized.resources.items():
        named = {
            k
            for k, v in resource.get("Properties", {}).items()
            if k in name_properties and isinstance(v, str)
        }
        assert named == set(), logical_id


def test_alarms_notify_an_encrypted_topic(synthesized: Synthesized) -> None:
    (topic_id, topic), *others = synthesized.of_type("AWS::SNS::Topic").items()
    assert others == []
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    alarms = synthesized.of_type("AWS::CloudWatch::Alarm")
    alarmed = {
        dimension["Value"]["Ref"]
        for alarm in alarms.values()
        for dimension in alarm["Properties"].get("Dimensions", [])
        if isinstance(dimension["Value"], dict) and "Ref" in dimension["Value"]
    }
    assert {"AgentLoop", "ApiFunction", "ErasureFunction"} <= alarmed
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id
