"""The packaged stack's CloudWatch alarms and operations dashboard.

They read the metrics the functions emit as EMF (names in chalicelib/observability.py, always
with the dimension `service`) and AWS's own metrics for Lambda, SQS and API Gateway.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import observability as obs

API_NAME = "session-service"  # the RestApi's name (chalice's app_name): API Gateway's dimension
STREAM_FUNCTIONS = ("FeedbackHandler", "AnalyticsHandler")
OUTCOMES = ("delivered", "retrying", "throttled", "failed", "gone")


def _alarm(description: str, namespace: str, metric: str, dimensions: dict[str, Any],
           threshold: Any, statistic: str = "Sum") -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AlarmDescription": description, "Namespace": namespace, "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Period": 300, "EvaluationPeriods": 1, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}
    if statistic.startswith("p"):
        properties["ExtendedStatistic"] = statistic
    else:
        properties["Statistic"] = statistic
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _ours(metric: str, threshold: Any, description: str, statistic: str = "Sum",
          **dimensions: str) -> dict[str, Any]:
    return _alarm(description, obs.NAMESPACE, metric, {"service": obs.SERVICE, **dimensions},
                  threshold, statistic)


def alarms(functions: tuple[str, ...]) -> dict[str, Any]:
    """Alarm resources by logical id."""
    found: dict[str, Any] = {
        "WebhookDeadLetteredAlarm": _ours(
            obs.WEBHOOK_DEAD_LETTERED, 0, "Webhooks spent their attempts and were dead-lettered: "
            "GET /v1/deliveries?status=failed lists them; redrive once the receiver is fixed.",
            Source="delivery"),
        "WebhookSafetyNetAlarm": _ours(
            obs.WEBHOOK_DEAD_LETTERED, 0, "SQS dead-lettered webhooks by its receive limit: the "
            "delivery function keeps crashing (see its errors); the sweep listed them as failed.",
            Source="sqs"),
        "DeliveryLagAlarm": _ours(
            obs.WEBHOOK_LAG, {"Ref": "DeliveryLagAlarmSeconds"},
            "Webhooks reach the receiver late (p99 of change -> delivery).", "p99"),
        "DeadLetterQueueNotEmptyAlarm": _alarm(
            "Webhooks failed for good: see GET /v1/deliveries?status=failed, then make redrive.",
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}, 0, "Maximum"),
        "DeliveryBacklogAlarm": _alarm(
            "Webhook deliveries are failing or slow: the oldest queued message is over 30 min old.",
            "AWS/SQS", "ApproximateAgeOfOldestMessage",
            {"QueueName": {"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}}, 1800, "Maximum"),
        "Api5xxAlarm": _alarm("The API answered 5xx.", "AWS/ApiGateway", "5XXError",
                              {"ApiName": API_NAME}, 0),
    }
    for name in STREAM_FUNCTIONS:
        found[f"{name}IteratorAgeAlarm"] = _alarm(
            f"{name} is behind the table's stream by over a minute.", "AWS/Lambda", "IteratorAge",
            {"FunctionName": {"Ref": name}}, 60_000, "Maximum")
    for name in functions:
        found[f"{name}ErrorsAlarm"] = _alarm(
            f"{name} failed (see its logs).", "AWS/Lambda", "Errors", {"FunctionName": {"Ref": name}}, 0)
        found[f"{name}ThrottlesAlarm"] = _alarm(
            f"{name} was throttled (concurrency limit).", "AWS/Lambda", "Throttles",
            {"FunctionName": {"Ref": name}}, 0)
    return found


def _metric(metric: str, stat: str = "Sum", **dimensions: str) -> list[Any]:
    row: list[Any] = [obs.NAMESPACE, metric, "service", obs.SERVICE]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, {"stat": stat}]


def _widget(title: str, metrics: list[Any], x: int, y: int, width: int = 12,
            stacked: bool = False) -> dict[str, Any]:
    return {"type": "metric", "x": x, "y": y, "width": width, "height": 6, "properties": {
        "title": title, "region": "${AWS::Region}", "view": "timeSeries", "stacked": stacked,
        "period": 300, "metrics": metrics}}


def dashboard(functions: tuple[str, ...]) -> dict[str, Any]:
    """One dashboard: the webhook pipeline, progress reports, jobs, and the functions."""
    lambda_rows = [["AWS/Lambda", kind, "FunctionName", f"${{{name}}}", {"stat": "Sum"}]
                   for name in functions for kind in ("Errors", "Throttles")]
    widgets = [
        _widget("Webhook attempts by outcome", [_metric(obs.WEBHOOK_ATTEMPTS, Outcome=o) for o in OUTCOMES],
                0, 0, stacked=True),
        _widget("Webhook latency and lag", [
            _metric(obs.WEBHOOK_LATENCY, "p50"), _metric(obs.WEBHOOK_LATENCY, "p99"),
            _metric(obs.WEBHOOK_LAG, "p50"), _metric(obs.WEBHOOK_LAG, "p99")], 12, 0),
        _widget("Dead-lettered webhooks", [
            _metric(obs.WEBHOOK_DEAD_LETTERED, Source="delivery"),
            _metric(obs.WEBHOOK_DEAD_LETTERED, Source="sqs"),
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DeadLetterQueue.QueueName}",
             {"stat": "Maximum"}]], 0, 6),
        _widget("Progress reports", [
            _metric(obs.PROGRESS_ACCEPTED), _metric(obs.PROGRESS_REPLAYED),
            [{"expression": f"SEARCH('{{{obs.NAMESPACE},ErrorCode,service}} MetricName=\"{obs.PROGRESS_REJECTED}\"', "
                            "'Sum', 300)", "id": "rejected", "label": "rejected by error code"}]],
                12, 6),
        _widget("Idle sessions abandoned, stream batch failures", [
            _metric(obs.SESSIONS_ABANDONED),
            _metric(obs.STREAM_BATCH_FAILURES, Function="feedback"),
            _metric(obs.STREAM_BATCH_FAILURES, Function="analytics")], 0, 12),
        _widget("Stream iterator age (ms)", [
            ["AWS/Lambda", "IteratorAge", "FunctionName", f"${{{name}}}", {"stat": "Maximum"}]
            for name in STREAM_FUNCTIONS], 12, 12),
        _widget("Function errors and throttles", lambda_rows, 0, 18, width=24),
        _widget("API", [["AWS/ApiGateway", kind, "ApiName", API_NAME, {"stat": "Sum"}]
                        for kind in ("Count", "4XXError", "5XXError")], 0, 24, width=24),
    ]
    return {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": {"Fn::Sub": "${AWS::StackName}-operations"},
        "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets}, separators=(",", ":"))}}}
