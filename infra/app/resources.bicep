// Everything of signals-export inside one resource group (resource group scope).
//
// infra/main.bicep (subscription scope, used by azd) creates the resource group and deploys this file
// into it. To deploy into a resource group that already exists, deploy this file directly:
//   az deployment group create --resource-group <rg> --template-file infra/app/resources.bicep --parameters ...
// (see infra/README.md). Resource names are the same either way for the same subscription,
// environmentName and location.
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd environment name). Seeds a unique token used in every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. Must be a region that offers the Flex Consumption plan (az functionapp list-flexconsumption-locations). Default: the resource group\'s.')
param location string = resourceGroup().location

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
// Names
// ---------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('../abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'signals-export'
}

var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}signals-${resourceToken}'
// A container name takes no '--': the app name's hyphens are dropped (a 32-character cut can end on one).
var deploymentContainerName = 'app-package-${replace(toLower(take(appName, 32)), '-', '')}-${take(toLower(uniqueString(appName, resourceToken)), 7)}'
var eventHubName = 'signals'
var consumerGroupName = 'signals-export'
var loginEndpoint = environment().authentication.loginEndpoint
var issuer = !empty(authIssuer) ? authIssuer : '${loginEndpoint}${tenant().tenantId}/v2.0'
var jwksUri = !empty(authJwksUri) ? authJwksUri : '${loginEndpoint}${tenant().tenantId}/discovery/v2.0/keys'

// ---------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------

// The one identity the app uses for everything: host storage, deployment package, Event Hubs,
// Key Vault references, Application Insights ingestion. Its roles are in rbac.bicep.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}signals-${resourceToken}'
    location: location
    tags: tags
  }
}

// forceCmkForQuery defaults to true in this module (avm/res/operational-insights/workspace 0.7.0, main.bicep),
// and then a linked 'Query' storage account is required for the saved searches of workbook.bicep. No
// customer-managed key is used here, so it is off (policy CKV_SIGX_3).
module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'loganalytics'
  params: {
    name: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: logRetentionInDays
    forceCmkForQuery: false
  }
}

module monitoring 'monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
  }
}

module storage 'storage.bicep' = {
  name: 'storage'
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    backlogDeleteAfterDays: backlogDeleteAfterDays
  }
}

module eventHubs 'eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    name: !empty(eventHubsNamespaceName) ? eventHubsNamespaceName : '${abbrs.eventHubNamespaces}${resourceToken}'
    location: location
    tags: tags
    eventHubName: eventHubName
    consumerGroupName: consumerGroupName
    partitionCount: eventHubPartitionCount
    capacity: eventHubsCapacity
    maximumThroughputUnits: eventHubsMaximumThroughputUnits
  }
}

module keyVault 'keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    keyEncryptionKey: keyEncryptionKey
  }
}

module rbac 'rbac.bicep' = {
  name: 'rbac'
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.name
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module api 'api.bicep' = {
  name: 'api'
  // The roles must exist before the app starts: the host needs its storage, and the Key Vault
  // reference in KEY_ENCRYPTION_KEY is resolved with the identity's Key Vault Secrets User role.
  dependsOn: [
    rbac
  ]
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.name
    eventHubsFullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubName
    consumerGroupName: consumerGroupName
    keyEncryptionKeySecretUri: keyVault.outputs.keyEncryptionKeySecretUri
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    exportAlwaysReadyInstances: exportAlwaysReadyInstances
    allowedStorageSuffixes: allowedStorageSuffixes
    authIssuer: issuer
    authAudience: authAudience
    authJwksUri: jwksUri
    healthSchedule: healthSchedule
    backlogRetentionDays: backlogRetentionDays
    exportCacheSeconds: exportCacheSeconds
    locationDatabaseBlob: locationDatabaseBlob
    exportAppClientId: exportAppClientId
  }
}

module workbook 'workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    workspaceName: logAnalytics.outputs.name
    workspaceResourceId: logAnalytics.outputs.resourceId
    workbookSeed: resourceToken
  }
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    namePrefix: 'alert-signals-${resourceToken}'
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
// Outputs
// ---------------------------------------------------------------------------------------------------

output functionAppName string = api.outputs.name
output functionAppHostName string = api.outputs.defaultHostName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output identityName string = identity.outputs.name
output eventHubsNamespaceName string = eventHubs.outputs.namespaceName
output eventHubsFullyQualifiedNamespace string = eventHubs.outputs.fullyQualifiedNamespace
output eventHubName string = eventHubName
output consumerGroupName string = consumerGroupName
output storageAccountName string = storage.outputs.name
output storageBlobEndpoint string = storage.outputs.blobEndpoint
output storageQueueEndpoint string = storage.outputs.queueEndpoint
output storageTableEndpoint string = storage.outputs.tableEndpoint
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output applicationInsightsName string = monitoring.outputs.name
// Not a secret: with local authentication disabled, ingestion also needs a Microsoft Entra token.
output applicationInsightsConnectionString string = monitoring.outputs.connectionString
output logAnalyticsWorkspaceName string = logAnalytics.outputs.name
output workbookId string = workbook.outputs.workbookId
