"""What the cited sources say, as constants, each with the source it was read from.

The contract tests compare the service and devstack with these values; docs/conformance.md cites the
same sources row by row. When a source changes (a new extension version), change the constant and
its source together, and the tests show what no longer agrees.

Repositories and the commits read:
- SDK: Azure/azure-sdk-for-net (WebJobs extensions: Storage.Queues 5.x, EventHubs 5.x)
- WEBJOBS: Azure/azure-webjobs-sdk @ f79ea0bff76c31048388fde784a9164b5d880c8a
- HOST: Azure/azure-functions-host @ 89dc438d476542786f2fc4070f553423213a6223
- EXTENSIONS: Azure/azure-webjobs-sdk-extensions @ 2e7550f72362ee727b3e55703904212f0690c431
- PYLIB: Azure/azure-functions-python-library @ 2e8ba4b5146cde3b41b16df09b4f5b25a95ba340
"""

from __future__ import annotations

# -- Queue trigger: Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x -----------------------------

# SDK sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueuesOptions.cs
QUEUE_DEFAULT_ENCODING = "base64"  # `_messageEncoding = QueueMessageEncoding.Base64`
QUEUE_DEFAULT_MAX_DEQUEUE_COUNT = 5  # `DefaultMaxDequeueCount = 5`
QUEUE_DEFAULT_BATCH_SIZE = 16  # `DefaultBatchSize = 16`
QUEUE_MAX_BATCH_SIZE = 32  # `MaxBatchSize = 32`
QUEUE_DEFAULT_VISIBILITY_TIMEOUT = 0.0  # `_visibilityTimeout = TimeSpan.Zero`
# SDK .../Storage.Common/src/Shared/Queues/QueuePollingIntervals.cs @ a256d07e7edbfbbd31bcfa3b1d5266907bb30397
QUEUE_POLLING_MINIMUM = 0.1  # `Minimum = TimeSpan.FromMilliseconds(100)`
QUEUE_DEFAULT_MAX_POLLING_INTERVAL = 60.0  # `DefaultMaximum = TimeSpan.FromMinutes(1)`
# SDK .../Storage.Common/src/Shared/Queues/QueueListener.cs @ 22354f3845a6454b0b784ea023a0d892180b12f0
QUEUE_RECEIVE_VISIBILITY = 600  # `_visibilityTimeout = TimeSpan.FromMinutes(10)`, renewed at half-time
# SDK .../Storage.Queues/src/Listeners/QueueListenerFactory.cs @ 0efe5a88bc5ad131f561d1efc3adc0d933afb294
POISON_SUFFIX = "-poison"  # `poisonQueueSuffix = "-poison"`

# -- Event Hubs trigger: Microsoft.Azure.WebJobs.Extensions.EventHubs 5.x -------------------------------

# SDK sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/src/Triggers/EventHubTriggerBindingStrategy.cs
# @ 3eb90cb47ad714f1f66fea088fa3795033a88166: the binding data of a batch (AddBindingData(events)).
EVENTHUB_BATCH_METADATA = frozenset(
    {
        "PartitionContext",
        "PartitionKeyArray",
        "OffsetArray",
        "SequenceNumberArray",
        "EnqueuedTimeUtcArray",
        "PropertiesArray",
        "SystemPropertiesArray",
    }
)
# GetSystemPropertiesForBinding: the keys every SystemProperties entry has.
EVENTHUB_SYSTEM_PROPERTIES = frozenset({"SequenceNumber", "Offset", "PartitionKey", "EnqueuedTimeUtc"})
# SDK .../EventHubs/src/Config/TriggerPartitionContext.cs (PartitionContext's properties, and one more)
EVENTHUB_PARTITION_CONTEXT = frozenset(
    {
        "FullyQualifiedNamespace",
        "EventHubName",
        "ConsumerGroup",
        "PartitionId",
        "IsCheckpointingAfterInvocation",
    }
)

# -- Retries: WEBJOBS src/Microsoft.Azure.WebJobs.Host/Timers/RandomizedExponentialBackoffStrategy.cs ----
RETRY_RANDOMIZATION = 0.2  # `RandomizationFactor = 0.2`

# -- Timer trigger: EXTENSIONS src/WebJobs.Extensions/Extensions/Timers/TimerTriggerAttribute.cs ---------
TIMER_USE_MONITOR_DEFAULT = True  # `UseMonitor = true` in both constructors

# -- HTTP: https://learn.microsoft.com/azure/azure-functions/functions-host-json#http and
# https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits -----
HTTP_ROUTE_PREFIX = "api"  # extensions.http.routePrefix default
HTTP_MAX_REQUEST_BYTES = 100 * 1024 * 1024  # "The HTTP request length is limited to 100 MB"
HTTP_MAX_URL_BYTES = 4096  # "the URL length is limited to 4 KB (4,096 bytes)"
# PYLIB azure/functions/decorators/function_app.py, AsgiFunctionApp._add_http_app
ASGI_ROUTE = "/{*route}"

# -- Storage limits ------------------------------------------------------------------------------------
# https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
BLOB_NAME_MAX = 1024  # "A blob name must be at least one character long and cannot be more than 1,024"
HNS_PATH_SEGMENTS_MAX = (
    63  # "can't exceed 63 (including path segments for container name and account host name)"
)
# https://learn.microsoft.com/rest/api/storageservices/append-block#remarks
APPEND_BLOB_BLOCKS_MAX = 50_000
APPEND_BLOCK_MAX_BYTES = 4 * 1024 * 1024  # the limit before x-ms-version 2022-11-02 (since: 100 MiB)
# https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model
TABLE_ENTITY_MAX_BYTES = 1024 * 1024
TABLE_STRING_PROPERTY_MAX_CHARS = 32 * 1024  # 64 KiB of UTF-16
# https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions
TABLE_TRANSACTION_OPERATIONS_MAX = 100
# https://learn.microsoft.com/rest/api/storageservices/put-message
QUEUE_MESSAGE_MAX_BYTES = 64 * 1024
