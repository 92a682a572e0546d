// signals-export: Azure Functions (Flex Consumption, Python 3.11) that reads signals from Event Hubs
// and exports them into customers' ADLS Gen2 / Blob storage.
//
// Subscription scope: creates the resource group and deploys app/resources.bicep (everything else)
// into it. Deploy with `azd up`, or with `az deployment sub create --location <region> --template-file
// infra/main.bicep --parameters ...`; into an existing resource group, deploy app/resources.bicep with
// `az deployment group create` (see infra/README.md). Every connection is identity-based: no keys.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd environment name). Seeds a unique token used in every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. Must be a region that offers the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group name. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Function App name. Empty: func-signals-<token>.')
param functionAppName string = ''

@description('Storage account name (the service\'s own storage). Empty: st<token>.')
param storageAccountName string = ''

@description('Event Hubs namespace name. Empty: evhns-<token>.')
param eventHubsNamespaceName string = ''

@description('Key Vault name. Empty: kv-<token>.')
param keyVaultName string = ''

@description('Object id of a person (or group) that should get the same data-plane roles as the app, for local runs and debugging. Empty: none. azd fills it with the signed-in user.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal that principalId names.')
param principalType string = 'User'

// Function App scale ---------------------------------------------------------------------------------

@minValue(40)
@maxValue(1000)
@description('Highest number of instances the Flex Consumption app scales out to, 40 to 1000 (Flex refuses a lower maximum). Per-function scaling: the Event Hubs trigger never uses more instances than the hub has partitions, whatever this is.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(0)
@maxValue(20)
@description('Always-ready instances for the export_signals (Event Hubs) function: 1 keeps export latency low after quiet periods; 0 lets the app scale to zero (cheapest).')
param exportAlwaysReadyInstances int = 1

// Event Hubs -------------------------------------------------------------------------------------------

@minValue(1)
@maxValue(32)
@description('Partitions of the signals hub. Fixed once created on the Standard tier: choose for peak throughput (about 1 MB/s per partition).')
param eventHubPartitionCount int = 8

@minValue(1)
@maxValue(20)
@description('Throughput units of the Event Hubs namespace.')
param eventHubsCapacity int = 1

@minValue(0)
@maxValue(40)
@description('Auto-inflate ceiling in throughput units. 0 disables auto-inflate.')
param eventHubsMaximumThroughputUnits int = 4

// Storage ------------------------------------------------------------------------------------------------

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Replication of the service\'s storage account. ZRS by default (the backlog and ledger must survive a zone outage); use Standard_LRS in regions without zones.')
param storageSkuName string = 'Standard_ZRS'

@minValue(1)
@maxValue(365)
@description('Lifecycle rule: delete blobs under backlog/ this many days after their last modification. A backstop for the BACKLOG_RETENTION_DAYS retention the code enforces, so keep it above that.')
param backlogDeleteAfterDays int = 8

// App settings ---------------------------------------------------------------------------------------------

@secure()
@minLength(44)
@description('KEY_ENCRYPTION_KEY: base64 of a 32-byte AES-256 key (several, comma-separated and newest first, while rotating). Stored only in Key Vault. Generate one with: python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())"')
param keyEncryptionKey string

@description('ALLOWED_STORAGE_SUFFIXES: comma-separated host suffixes that customers\' destinations may use.')
param allowedStorageSuffixes string = '.blob.core.windows.net,.dfs.core.windows.net'

@description('AUTH_AUDIENCE: the audience (application ID URI or client id) of the Microsoft Entra ID app registration that protects the management API, e.g. api://signals-export.')
param authAudience string

@description('AUTH_ISSUER: token issuer the management API accepts. Empty: https://login.microsoftonline.com/<this tenant>/v2.0.')
param authIssuer string = ''

@description('AUTH_JWKS_URI: where the management API fetches the issuer\'s signing keys. Empty: https://login.microsoftonline.com/<this tenant>/discovery/v2.0/keys.')
param authJwksUri string = ''

@description('HEALTH_SCHEDULE: NCRONTAB schedule (six fields, with seconds) of the export health check.')
param healthSchedule string = '0 */1 * * * *'

@minValue(1)
@description('BACKLOG_RETENTION_DAYS: days the code keeps undelivered signals in the backlog before dropping them.')
param backlogRetentionDays int = 7

@minValue(1)
@description('EXPORT_CACHE_SECONDS: how long an instance caches the list of exports.')
param exportCacheSeconds int = 30

@description('EXPORT_APP_CLIENT_ID: client id of the multi-tenant application customers consent to for keyless (Microsoft Entra ID) destinations, whose federated credential trusts the managed identity (infra/README.md, Keyless destinations); empty: Microsoft Entra ID in the service\'s own tenant only.')
param exportAppClientId string = ''

@description('LOCATION_DATABASE_BLOB: <container>/<blob> of a MaxMind DB file (GeoLite2/GeoIP2 City) in the service\'s storage; empty: no location option (infra/README.md, Location database).')
param locationDatabaseBlob string = ''

@minValue(30)
@maxValue(730)
@description('Log Analytics retention, in days: 30 to 730 on the PerGB2018 tier.')
param logRetentionInDays int = 30

// Alerts (app/alerts.bicep; infra/README.md, Alerts)

@description('Where alerts are mailed (an action group); empty: shown in the portal only.')
param alertEmail string = ''

@description('Replay work items in the poison queue above which to alert.')
@minValue(0)
param poisonMessagesThreshold int = 0

@description('Dead-lettered events (not signals) in an hour above which to alert.')
@minValue(0)
param deadLettersPerHourThreshold int = 100

@description('Exports postponed in 15 minutes above which to alert.')
@minValue(0)
param postponedExportsThreshold int = 0

@description('Age in hours of the oldest backlog above which to alert (backlogs expire after BACKLOG_RETENTION_DAYS).')
@minValue(1)
param backlogAgeHoursThreshold int = 24

@description('Batch latency p99 in seconds (enqueued to written) above which to alert.')
@minValue(1)
param batchLatencyP99SecondsThreshold int = 300

@description('Health check duration over its period, in percent, above which to alert.')
@minValue(1)
param healthCheckLoadPercentThreshold int = 100

@description('Failed invocations of export_signals in 15 minutes above which to alert.')
@minValue(0)
param exportFailuresThreshold int = 5

// ---------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('abbreviations.json')
var tags = {
  'azd-env-name': environmentName
  application: 'signals-export'
}

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module resources 'app/resources.bicep' = {
  name: 'signals-export'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    functionAppName: functionAppName
    storageAccountName: storageAccountName
    eventHubsNamespaceName: eventHubsNamespaceName
    keyVaultName: keyVaultName
    principalId: principalId
    principalType: principalType
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    exportAlwaysReadyInstances: exportAlwaysReadyInstances
    eventHubPartitionCount: eventHubPartitionCount
    eventHubsCapacity: eventHubsCapacity
    eventHubsMaximumThroughputUnits: eventHubsMaximumThroughputUnits
    storageSkuName: storageSkuName
    backlogDeleteAfterDays: backlogDeleteAfterDays
    keyEncryptionKey: keyEncryptionKey
    allowedStorageSuffixes: allowedStorageSuffixes
    authAudience: authAudience
    authIssuer: authIssuer
    authJwksUri: authJwksUri
    healthSchedule: healthSchedule
    backlogRetentionDays: backlogRetentionDays
    exportCacheSeconds: exportCacheSeconds
    locationDatabaseBlob: locationDatabaseBlob
    exportAppClientId: exportAppClientId
    logRetentionInDays: logRetentionInDays
    alertEmail: alertEmail
    poisonMessagesThreshold: poisonMessagesThreshold
    deadLettersPerHourThreshold: deadLettersPerHourThreshold
    postponedExportsThreshold: postponedExportsThreshold
    backlogAgeHoursThreshold: backlogAgeHoursThreshold
    batchLatencyP99SecondsThreshold: batchLatencyP99SecondsThreshold
    healthCheckLoadPercentThreshold: healthCheckLoadPercentThreshold
    exportFailuresThreshold: exportFailuresThreshold
  }
}

// ---------------------------------------------------------------------------------------------------
// Outputs (azd writes each into the environment's .env)
// ---------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output RESOURCE_GROUP string = rg.name

output AZURE_FUNCTION_NAME string = resources.outputs.functionAppName
output SERVICE_API_NAME string = resources.outputs.functionAppName
output AZURE_FUNCTION_HOSTNAME string = resources.outputs.functionAppHostName
output SERVICE_API_URI string = 'https://${resources.outputs.functionAppHostName}'

output AZURE_CLIENT_ID string = resources.outputs.identityClientId
output AZURE_MANAGED_IDENTITY_NAME string = resources.outputs.identityName
output SERVICE_API_IDENTITY_PRINCIPAL_ID string = resources.outputs.identityPrincipalId

output AZURE_EVENTHUBS_NAMESPACE string = resources.outputs.eventHubsNamespaceName
output AZURE_EVENTHUBS_FQDN string = resources.outputs.eventHubsFullyQualifiedNamespace
output EVENTHUB_NAME string = resources.outputs.eventHubName
output EVENTHUB_CONSUMER_GROUP string = resources.outputs.consumerGroupName

output AZURE_STORAGE_ACCOUNT_NAME string = resources.outputs.storageAccountName
output AZURE_STORAGE_BLOB_ENDPOINT string = resources.outputs.storageBlobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = resources.outputs.storageQueueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = resources.outputs.storageTableEndpoint

output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = resources.outputs.keyVaultUri

output APPLICATIONINSIGHTS_NAME string = resources.outputs.applicationInsightsName
// Not a secret: with local authentication disabled, ingestion also needs a Microsoft Entra token.
output APPLICATIONINSIGHTS_CONNECTION_STRING string = resources.outputs.applicationInsightsConnectionString
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.logAnalyticsWorkspaceName
output AZURE_WORKBOOK_ID string = resources.outputs.workbookId
