"""The notifier: where run and data-quality notifications go. One interface, a local twin and an AWS (SNS) twin.

- `LocalNotifier`: a log line, one JSON object per notification appended to a JSON lines file, and an optional
  webhook (e.g. a Slack incoming webhook) POSTed with a short timeout; a webhook that cannot be reached is
  logged, never raised, so a notification never fails a run.
- `SnsNotifier`: one `sns.publish` per notification (Subject at most 100 characters, Message the JSON object).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from abc import abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

log = logging.getLogger(__name__)

SNS_SUBJECT_LIMIT = 100  # an SNS limit, not a setting
WEBHOOK_URL_VARIABLE = "ENROLLMENT_WEBHOOK_URL"
SNS_TOPIC_VARIABLE = "ENROLLMENT_SNS_TOPIC_ARN"
NOTIFICATIONS_FILE = "notifications.jsonl"


def envelope(kind: str, subject: str, message: dict) -> dict[str, Any]:
    """The JSON object every twin sends: what happened, a one-line subject, the details."""
    return {"kind": kind, "subject": subject, "sent_at": datetime.now(UTC).isoformat(), "message": message}


class Notifier(dg.ConfigurableResource):
    """Sends one notification; `kind` is `run_success`, `run_failure` or `check_failure`."""

    @abstractmethod
    def notify(self, kind: str, subject: str, message: dict) -> None:
        """Deliver one notification."""


class LocalNotifier(Notifier):
    """A log line, a line in a JSON lines file and, when `webhook_url` is set, a POST to it."""

    path: str
    webhook_url: str = ""
    webhook_timeout_seconds: float = 5.0

    def notify(self, kind: str, subject: str, message: dict) -> None:
        record = envelope(kind, subject, message)
        log.log(logging.INFO if kind.endswith("success") else logging.WARNING, "%s: %s", kind, subject)
        self._append(record)
        if self.webhook_url:
            self._post(record)

    def _append(self, record: dict) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def _post(self, record: dict) -> None:
        """POST the record with a `text` field (what Slack shows); failures are logged, never raised."""
        body = json.dumps({"text": record["subject"], **record}, default=str).encode()
        request = urllib.request.Request(
            self.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout_seconds) as response:
                response.read()
        except Exception as error:  # a notification must never fail the run
            log.warning("webhook %s not reached: %s", self.webhook_url, error)


class SnsNotifier(Notifier):
    """Publishes to an SNS topic; the region comes from `region_name`, else AWS_REGION, else boto3's defaults."""

    topic_arn: str
    region_name: str = ""

    def notify(self, kind: str, subject: str, message: dict) -> None:
        self._client().publish(
            TopicArn=self.topic_arn,
            Subject=sns_subject(subject),
            Message=json.dumps(envelope(kind, subject, message), default=str),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}},
        )

    def _client(self):
        import boto3  # only the AWS twin needs it

        return boto3.client("sns", region_name=self.region_name or os.environ.get("AWS_REGION") or None)


def sns_subject(subject: str) -> str:
    """SNS subjects are one line of ASCII text, at most 100 characters."""
    line = " ".join(subject.split()).encode("ascii", "replace").decode()
    return line if len(line) <= SNS_SUBJECT_LIMIT else line[: SNS_SUBJECT_LIMIT - 3] + "..."


def local_notifier(home: Path) -> LocalNotifier:
    """The local twin: `$ENROLLMENT_HOME/notifications.jsonl`, plus ENROLLMENT_WEBHOOK_URL when it is set."""
    webhook = dg.EnvVar(WEBHOOK_URL_VARIABLE) if os.environ.get(WEBHOOK_URL_VARIABLE) else ""
    return LocalNotifier(path=str(home / NOTIFICATIONS_FILE), webhook_url=webhook)


def sns_notifier() -> SnsNotifier:
    """The AWS twin: the topic from ENROLLMENT_SNS_TOPIC_ARN."""
    return SnsNotifier(topic_arn=dg.EnvVar(SNS_TOPIC_VARIABLE))
