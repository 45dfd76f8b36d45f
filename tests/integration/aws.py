"""moto's server for the AWS destinations' tests: EventBridge buses whose rule sends
``source: authtrail`` to an SQS queue the test reads delivered events from, and S3 buckets
an archive is read back from."""

from __future__ import annotations

import gzip
import time
from typing import Any

import boto3
import orjson

from tests import leaks

REGION = "eu-west-1"
ACCESS_KEY = "AKIAAUTHTRAILTEST0001"
SECRET_KEY = "moto-does-not-check-this-secret"
leaks.register(SECRET_KEY)
PATTERN = orjson.dumps({"source": ["authtrail"]}).decode()


class Aws:
    """moto's server: buses with a rule sending ``source: authtrail`` to an SQS queue;
    buckets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events = self.client("events")
        self.sqs = self.client("sqs")
        self.s3 = self.client("s3")

    def client(self, service: str) -> Any:
        """A boto3 client of moto's server (each thread needs its own)."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self, name: str) -> None:
        self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of ``bucket``: key -> its body, gunzipped."""
        found: dict[str, bytes] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"]] = gzip.decompress(body)
        return found

    def queue(self, name: str) -> str:
        return str(self.sqs.create_queue(QueueName=name)["QueueUrl"])

    def bus(self, name: str, queue_url: str) -> None:
        self.events.create_event_bus(Name=name)
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_rule(Name=f"{name}-rule", EventBusName=name, EventPattern=PATTERN)
        self.events.put_targets(
            Rule=f"{name}-rule", EventBusName=name, Targets=[{"Id": "queue", "Arn": arn}]
        )

    def receive(self, queue_url: str, expected: int, timeout: float = 40) -> list[dict[str, Any]]:
        """Delivered events (the EventBridge envelope) until ``expected`` arrived, then a
        short quiet period to catch any extra (duplicates)."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                received.append(orjson.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if len(received) >= expected:
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() >= quiet_until:
                    break
            if not messages:
                time.sleep(0.1)
        return received
