"""A dashboard of the harness, and alarms that notify an encrypted SNS topic operators subscribe to."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.components.naming import colon_arn

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    """``AlarmTopic`` (subscribe to it), alarms on failed or timed-out invocations, API 5xx and
    function errors, and a dashboard of the same."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.Key,
        state_machine: sfn.StateMachine,
        rest_api: apigw.RestApi,
        functions: Sequence[lambda_.Function],
        metrics_namespace: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        # CloudWatch alarms publish to the encrypted topic with this key. AWS documents this key
        # statement without conditions (alarm publishing fails with kms:CallerAccount); the topic
        # policy below limits publishing to this account's alarms.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": colon_arn(self, "cloudwatch", "alarm", "*")}},
            )
        )
        notify = actions.SnsAction(self.topic)

        alarms = [
            self._alarm(
                "InvocationsFailed",
                state_machine.metric_failed(period=PERIOD),
                "Agent loop executions failed (each also wrote a RecordFailure event)",
            ),
            self._alarm(
                "InvocationsTimedOut",
                state_machine.metric_timed_out(period=PERIOD),
                "Agent loop executions hit the execution timeout backstop",
            ),
            self._alarm(
                "ApiServerErrors",
                rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                "The harness API returned 5xx responses",
            ),
        ]
        for function in functions:
            alarms.append(
                self._alarm(
                    f"{function.node.id}Errors",
                    function.metric_errors(period=PERIOD),
                    f"{function.node.id} raised errors (the loop retries transient ones)",
                )
            )
        for alarm in alarms:
            alarm.add_alarm_action(notify)

        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations (agent loop executions)",
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                    state_machine.metric_timed_out(period=PERIOD),
                ],
            ),
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest_api.metric_count(period=PERIOD),
                    rest_api.metric_client_error(period=PERIOD, statistic="Sum"),
                    rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                right=[rest_api.metric_latency(period=PERIOD, statistic="p99")],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors", left=[f.metric_errors(period=PERIOD) for f in functions], width=12
            ),
            cloudwatch.GraphWidget(
                title="Function duration p99",
                left=[f.metric_duration(period=PERIOD, statistic="p99") for f in functions],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(alarms=alarms, title="Alarms", width=24),
        )
        # The functions' EMF metrics (namespace POWERTOOLS_METRICS_NAMESPACE): every dimension
        # combination Powertools writes, found by SEARCH rather than listed.
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tool calls by type and outcome",
                left=[
                    cloudwatch.MathExpression(
                        expression=f"SEARCH('{{{metrics_namespace},ToolType,Status,service}} "
                        "MetricName=\"ToolCall\"', 'Sum', 300)",
                        label="",
                        period=PERIOD,
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Model fallbacks",
                left=[
                    cloudwatch.MathExpression(
                        expression=f"SEARCH('{{{metrics_namespace},FromProvider,ToProvider,service}} "
                        "MetricName=\"ModelFallback\"', 'Sum', 300)",
                        label="",
                        period=PERIOD,
                    )
                ],
                width=12,
            ),
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.Metric, description: str) -> cloudwatch.Alarm:
        return metric.create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
