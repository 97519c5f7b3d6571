"""Provision an emulated copy of the synthesized template in moto, over HTTP with boto3.

moto's CloudFormation lacks several resource types this stack uses, so the template is read
here resource by resource. Physical names are derived from the stack name and logical ids;
everything else (keys, table schemas, TTL, bucket lock settings, function handlers and
environment, the state machine definition, the API routes) comes from the template.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from local_runtime.template import Template

ROLE_NAME = "local-runtime-execution-role"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /harnesses/{harnessId}
    function_logical_id: str
    authorization_type: str
    required_parameters: tuple[str, ...]

    def matches(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        match = re.match(pattern, path)
        return match.groupdict() if match else None


@dataclass
class Deployment:
    template: Template
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> name/handler/env/arn
    routes: list[Route] = field(default_factory=list)
    kms_keys: dict[str, str] = field(default_factory=dict)  # logical id -> key id
    tables: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The union of the functions' environments; one name must mean one value everywhere."""
        merged: dict[str, str] = {}
        for logical_id, function in self.functions.items():
            for name, value in function["environment"].items():
                if merged.get(name, value) != value:
                    raise ValueError(f"{logical_id} sets {name} differently from another function")
                merged[name] = value
        return merged

    def function_by_name(self, name: str) -> dict[str, Any]:
        for function in self.functions.values():
            if function["name"] == name:
                return function
        raise KeyError(name)

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        # Literal path segments win over {parameters}, as in API Gateway.
        candidates = []
        for route in self.routes:
            params = route.matches(method, path)
            if params is not None:
                candidates.append((route.path.count("{"), route, params))
        if not candidates:
            return None
        _, route, params = min(candidates, key=lambda c: c[0])
        return route, params

    def paths(self) -> set[str]:
        return {route.path for route in self.routes}


def _physical_name(stack: str, logical_id: str, limit: int, lower: bool = False) -> str:
    name = f"{stack}-{logical_id}"
    return (name.lower() if lower else name)[:limit]


def provision(template: Template, endpoint_url: str) -> Deployment:
    session = boto3.session.Session(region_name=template.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    deployment = Deployment(template)
    _name_everything(template)
    _create_keys(template, deployment, client("kms"))
    _create_tables(template, deployment, client("dynamodb"))
    _create_buckets(template, deployment, client("s3"))
    role_arn = client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    _create_functions(template, deployment, client("lambda"), role_arn)
    _create_state_machines(template, deployment, client("stepfunctions"), role_arn)
    _read_routes(template, deployment)
    return deployment


def _name_everything(template: Template) -> None:
    """Give every resource its Ref/GetAtt values up front: functions and the state machine refer
    to each other (the API function's environment names the state machine, which names functions)."""
    account, region, stack = template.account_id, template.region, template.stack_name
    for logical_id, resource in template.resources.items():
        kind = resource["Type"]
        if kind == "AWS::DynamoDB::Table":
            name = _physical_name(stack, logical_id, 255)
            template.refs[logical_id] = name
            template.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        elif kind == "AWS::S3::Bucket":
            name = _physical_name(stack, logical_id, 63, lower=True)
            template.refs[logical_id] = name
            template.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        elif kind == "AWS::Lambda::Function":
            name = _physical_name(stack, logical_id, 64)
            template.refs[logical_id] = name
            template.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{name}"
        elif kind == "AWS::StepFunctions::StateMachine":
            name = _physical_name(stack, logical_id, 80)
            arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
            template.refs[logical_id] = arn
            template.attributes[(logical_id, "Name")] = name
            template.attributes[(logical_id, "Arn")] = arn
        elif kind == "AWS::ApiGateway::RestApi":
            template.refs[logical_id] = "local"
            template.attributes[(logical_id, "RootResourceId")] = "root"
        elif kind == "AWS::IAM::Role":
            template.refs[logical_id] = logical_id
            template.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{account}:role/{ROLE_NAME}"
        elif kind != "AWS::KMS::Key":
            template.refs.setdefault(logical_id, logical_id)


def _create_keys(template: Template, deployment: Deployment, kms: Any) -> None:
    for logical_id, props in template.of_type("AWS::KMS::Key"):
        key = kms.create_key(
            KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            Description=f"local copy of {logical_id}",
        )["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
        template.refs[logical_id] = key["KeyId"]
        template.attributes[(logical_id, "Arn")] = key["Arn"]
        deployment.kms_keys[logical_id] = key["KeyId"]


def _create_tables(template: Template, deployment: Deployment, dynamodb: Any) -> None:
    for logical_id, props in template.of_type("AWS::DynamoDB::Table"):
        name = template.refs[logical_id]
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        deployment.tables[logical_id] = name


def _create_buckets(template: Template, deployment: Deployment, s3: Any) -> None:
    for logical_id, props in template.of_type("AWS::S3::Bucket"):
        name = template.refs[logical_id]
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled")))
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            # Objects written without encryption headers get the bucket's default, as on AWS.
            rules = [
                # CloudFormation: ServerSideEncryptionByDefault; the API: ApplyServerSideEncryptionByDefault.
                {
                    (
                        "ApplyServerSideEncryptionByDefault"
                        if key == "ServerSideEncryptionByDefault"
                        else key
                    ): value
                    for key, value in rule.items()
                }
                for rule in template.resolve(encryption)
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        lock = props.get("ObjectLockConfiguration")
        if lock and lock.get("Rule"):
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": template.resolve(lock["Rule"]),
                },
            )
        deployment.buckets[logical_id] = name


def _code_zip() -> bytes:
    # moto stores a package per function; the code that runs is the project's, dispatched in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Handlers run in the local runtime's process.")
    return buffer.getvalue()


def _create_functions(template: Template, deployment: Deployment, lambda_client: Any, role_arn: str) -> None:
    code = _code_zip()
    for logical_id, props in template.of_type("AWS::Lambda::Function"):
        name = template.refs[logical_id]
        environment = {
            key: str(value)
            for key, value in template.resolve(props.get("Environment", {}).get("Variables", {})).items()
        }
        lambda_client.create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.13"),
            Role=role_arn,
            Handler=props["Handler"],
            Code={"ZipFile": code},
            Timeout=int(props.get("Timeout", 60)),
            Environment={"Variables": environment},
            Architectures=props.get("Architectures", ["arm64"]),
        )
        deployment.functions[logical_id] = {
            "name": name,
            "handler": props["Handler"],
            "environment": environment,
            "arn": template.attributes[(logical_id, "Arn")],
            "timeout": int(props.get("Timeout", 60)),
        }


def _create_state_machines(template: Template, deployment: Deployment, sfn: Any, role_arn: str) -> None:
    for logical_id, props in template.of_type("AWS::StepFunctions::StateMachine"):
        definition = props.get("DefinitionString")
        definition = json.dumps(props["Definition"]) if definition is None else template.resolve(definition)
        for name, value in template.resolve(props.get("DefinitionSubstitutions", {})).items():
            definition = definition.replace("${" + name + "}", str(value))
        name = template.attributes[(logical_id, "Name")]
        arn = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        deployment.state_machines[logical_id] = arn


def _read_routes(template: Template, deployment: Deployment) -> None:
    resources = dict(template.of_type("AWS::ApiGateway::Resource"))

    def path_of(resource_ref: Any) -> str:
        if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref:
            return ""  # the API's root resource
        logical_id = resource_ref["Ref"]
        props = resources[logical_id]
        return path_of(props["ParentId"]) + "/" + props["PathPart"]

    for _, props in template.of_type("AWS::ApiGateway::Method"):
        if props["HttpMethod"] == "OPTIONS":
            continue
        uri = json.dumps(props.get("Integration", {}).get("Uri", {}))
        targets = [
            lid
            for lid, r in template.resources.items()
            if r["Type"] == "AWS::Lambda::Function" and f'"{lid}"' in uri
        ]
        if len(targets) != 1:
            continue
        required = tuple(
            sorted(name for name, needed in (props.get("RequestParameters") or {}).items() if needed is True)
        )
        deployment.routes.append(
            Route(
                method=props["HttpMethod"],
                path=path_of(props["ResourceId"]) or "/",
                function_logical_id=targets[0],
                authorization_type=props.get("AuthorizationType", "NONE"),
                required_parameters=required,
            )
        )
