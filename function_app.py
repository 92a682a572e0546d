"""Bindings only: every decision lives in `shared/`.

- export_signals: Event Hub trigger; exports each batch to every matching export's destination.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.eventhub import batch_from_trigger
from shared.runtime import runtime

app = func.FunctionApp()
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
    report = runtime().exporter.export(batch_from_trigger(events))
    log.info(
        "batch exported",
        extra={
            "partition": report.partition,
            "received": report.received,
            "dead_lettered": report.dead_lettered,
            "exports": len(report.exports),
        },
    )
