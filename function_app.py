"""Bindings only: every decision lives in `shared/`.

- export_signals: Event Hub trigger; exports each batch to every matching export's destination.
- check_health: timer; judges the health of the exports that have something to judge, postpones,
  probes, disables, expires backlog; shares out what it cannot do in its time.
- check_health_range: queue trigger; judges one share of a health check (a range of projects).
- replay_backlog: queue trigger; replays one backlog file of a resumed export.
- notify_webhook: queue trigger; posts one state change to its export's webhook.
- management_api: HTTP; the management API (FastAPI, shared/api), which authenticates requests itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared import telemetry
from shared.api import create_api
from shared.eventhub import batch_from_trigger
from shared.health.check import HealthItem
from shared.replay import WorkItem
from shared.runtime import runtime
from shared.settings import HEALTH_QUEUE, NOTIFY_QUEUE, REPLAY_QUEUE

telemetry.configure()  # Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set
app = func.AsgiFunctionApp(
    app=create_api(lambda: runtime().api),
    http_auth_level=func.AuthLevel.ANONYMOUS,
    function_name="management_api",
)
log = logging.getLogger("signals_export")


@app.function_name("export_signals")
@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENTHUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
# The checkpoint advances when the function ends, error or not. It raises only when the service's own
# storage fails, and then the batch must run again rather than be skipped: retry without end (every
# write is idempotent). Customers' destinations never make it raise (their failures go to the backlog).
@app.retry(
    strategy="exponential_backoff",
    max_retry_count="-1",
    minimum_interval="00:00:02",
    maximum_interval="00:05:00",
)
def export_signals(events: list[func.EventHubEvent]) -> None:
    batch = batch_from_trigger(events)
    report = runtime().exporter.export(batch)
    telemetry.record_batch(
        report,
        written_at=datetime.now(UTC),
        earliest_enqueued=min((event.enqueued for event in batch.events), default=None),
    )
    log.info(
        "batch exported",
        extra={
            "partition": report.partition,
            "received": report.received,
            "dead_lettered": report.dead_lettered,
            "exports": len(report.exports),
        },
    )


@app.function_name("check_health")
@app.timer_trigger(arg_name="timer", schedule="%HEALTH_SCHEDULE%", run_on_startup=False)
def check_health(timer: func.TimerRequest) -> None:
    report = runtime().health_check.run()
    telemetry.record_check(report, part="check", now=runtime().clock())
    log.info(
        "health checked",
        extra={
            "seq": report.seq,
            "exports": report.checked,
            "changes": len(report.changes),
            "lost": report.lost,
            "items": report.items,
            "skipped": report.skipped,
            "seconds": round(report.seconds, 3),
        },
    )


@app.function_name("check_health_range")
@app.queue_trigger(arg_name="message", queue_name=HEALTH_QUEUE, connection="AzureWebJobsStorage")
def check_health_range(message: func.QueueMessage) -> None:
    # An exception leaves the item to the queue's retries, then the poison queue; judging is
    # idempotent within a check (an export judged once per check), so a retry is safe.
    item = HealthItem.from_message(message.get_body().decode())
    report = runtime().health_check.run_item(item)
    telemetry.record_check(report, part="item", now=runtime().clock())
    log.info(
        "health check range judged",
        extra={"seq": item.seq, "exports": report.checked, "changes": len(report.changes)},
    )


@app.function_name("replay_backlog")
@app.queue_trigger(arg_name="message", queue_name=REPLAY_QUEUE, connection="AzureWebJobsStorage")
def replay_backlog(message: func.QueueMessage) -> None:
    # An exception leaves the message to the queue's retries (visibilityTimeout, maxDequeueCount in
    # host.json), then the poison queue; replaying is idempotent, so a retry is always safe.
    item = WorkItem.from_message(message.get_body().decode())
    outcome = runtime().replayer.replay(item)
    log.info(
        "backlog replayed",
        extra={
            "project_id": item.project_id,
            "export_id": item.export_id,
            "signals": outcome.signals,
            "skipped": outcome.skipped,
            "folder": outcome.folder,
            "dequeue_count": message.dequeue_count,
        },
    )


@app.function_name("notify_webhook")
@app.queue_trigger(arg_name="message", queue_name=NOTIFY_QUEUE, connection="AzureWebJobsStorage")
def notify_webhook(message: func.QueueMessage) -> None:
    # Off the health check's path. NotDelivered leaves the message to the queue's retries, then the
    # poison queue (export-notify-poison); a notification delivered twice is told apart by its "at".
    runtime().webhooks.deliver(message.get_body())
