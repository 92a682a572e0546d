// The Function App on the Flex Consumption plan (FC1, Linux), Python 3.11, v2 programming model.
// One user-assigned identity for everything; every app setting is identity-based (no keys, no
// connection strings). The deployment package lives in a blob container of the service's storage
// account and is read with the same identity.

@description('Function App name (globally unique, 2-60 characters).')
param name string

@description('Flex Consumption plan name.')
param planName string

param location string = resourceGroup().location
param tags object = {}

@description('azd service name (azure.yaml) that deploys into this app.')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@description('<namespace>.servicebus.windows.net')
param eventHubsFullyQualifiedNamespace string
param eventHubName string
param consumerGroupName string

@description('Versionless URI of the key-encryption-key secret.')
param keyEncryptionKeySecretUri string

// Flex Consumption takes 40 to 1000 (flex-consumption-plan, Considerations: "The lowest maximum scale is
// currently 40"); the bounds here refuse other values before the plan does (policy CKV_SIGX_2).
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(0)
@maxValue(20)
@description('Always-ready instances of the export_signals function.')
param exportAlwaysReadyInstances int = 1

param allowedStorageSuffixes string = '.blob.core.windows.net,.dfs.core.windows.net'
param authIssuer string
param authAudience string
param authJwksUri string
param healthSchedule string = '0 */1 * * * *'
param backlogRetentionDays int = 7
param exportCacheSeconds int = 30

@description('LOCATION_DATABASE_BLOB: <container>/<blob> of a MaxMind DB file in the service\'s storage for the location option; empty: the option is refused.')
param locationDatabaseBlob string = ''

@description('EXPORT_APP_CLIENT_ID: the multi-tenant application of keyless destinations; empty: none.')
param exportAppClientId string = ''

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
  //checkov:skip=CKV_AZURE_225:Flex Consumption allocates instances per function on demand; zone redundancy for FC1 is region-dependent and opt-in. Event Hubs checkpoints let any new instance resume where another stopped, so it is left off.
}

// Per-function scale groups: a function that is not HTTP, blob or Durable scales in its own group,
// named function:<function name>. Always-ready instances are billed even when idle.
var exportAlwaysReady = {
  name: 'function:export_signals'
  instanceCount: exportAlwaysReadyInstances
}
var alwaysReady = exportAlwaysReadyInstances > 0 ? array(exportAlwaysReady) : []

var serviceTag = {
  'azd-service-name': serviceName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, serviceTag)
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    //checkov:skip=CKV_AZURE_222:The management API is called from outside Azure and authenticates every request with a Microsoft Entra ID token (AUTH_*); no VNet/private endpoint in this template.
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_17:Callers authenticate with Microsoft Entra ID bearer tokens; requiring client certificates (mTLS) would reject them and is not needed on top.
    clientCertEnabled: false
    // Key Vault references (KEY_ENCRYPTION_KEY) are resolved with the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    //checkov:skip=CKV_AZURE_213:App Service health check (healthCheckPath) evicts instances behind the HTTP load balancer; Flex Consumption instances are platform-managed per function and the main workload is the Event Hubs trigger. Export health is checked by the HEALTH_SCHEDULE timer.
    // No ftpsState, alwaysOn, linuxFxVersion, use32BitWorkerProcess, ...: Flex Consumption refuses them
    // (functions-app-settings, "Flex Consumption plan deprecations"; policy CKV_SIGX_1).
    //checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP and refuses siteConfig.ftpsState with BadRequest (Flex Consumption plan deprecations, Functions app settings reference): there is nothing to disable.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      // Flex Consumption takes no FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION or
      // WEBSITE_RUN_FROM_PACKAGE: runtime and package come from functionAppConfig below.
      appSettings: [
        // Host storage, identity-based; the code also keeps its tables, queue and blobs there.
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageAccount.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageAccount.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageAccount.properties.primaryEndpoints.table
        }
        // Event Hubs trigger connection (connection="EventHubConnection" in function_app.py), identity-based.
        {
          name: 'EventHubConnection__fullyQualifiedNamespace'
          value: eventHubsFullyQualifiedNamespace
        }
        {
          name: 'EventHubConnection__credential'
          value: 'managedidentity'
        }
        {
          name: 'EventHubConnection__clientId'
          value: identityClientId
        }
        {
          name: 'EVENTHUB_NAME'
          value: eventHubName
        }
        {
          name: 'EVENTHUB_CONSUMER_GROUP'
          value: consumerGroupName
        }
        // Key Vault reference, resolved by the platform with keyVaultReferenceIdentity.
        {
          name: 'KEY_ENCRYPTION_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyEncryptionKeySecretUri})'
        }
        // Pipeline settings.
        {
          name: 'ALLOWED_STORAGE_SUFFIXES'
          value: allowedStorageSuffixes
        }
        {
          name: 'EXPORT_CACHE_SECONDS'
          value: string(exportCacheSeconds)
        }
        {
          name: 'BACKLOG_RETENTION_DAYS'
          value: string(backlogRetentionDays)
        }
        {
          name: 'HEALTH_SCHEDULE'
          value: healthSchedule
        }
        // Location enrichment: the operator's MaxMind DB, read with the identity (Storage Blob Data Owner).
        {
          name: 'LOCATION_DATABASE_BLOB'
          value: locationDatabaseBlob
        }
        // Keyless destinations: the service signs in to customers' tenants as the multi-tenant application
        // (its federated credential trusts the identity below), and as that identity in its own tenant.
        {
          name: 'EXPORT_APP_CLIENT_ID'
          value: exportAppClientId
        }
        {
          name: 'EXPORT_APP_TENANT_ID'
          value: tenant().tenantId
        }
        {
          name: 'EXPORT_IDENTITY_CLIENT_ID'
          value: identityClientId
        }
        // Management API: bearer tokens issued for this Microsoft Entra ID app registration.
        {
          name: 'AUTH_ISSUER'
          value: authIssuer
        }
        {
          name: 'AUTH_AUDIENCE'
          value: authAudience
        }
        {
          name: 'AUTH_JWKS_URI'
          value: authJwksUri
        }
        // Telemetry with Microsoft Entra ID authentication (the component has local auth disabled).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        //checkov:skip=CKV_AZURE_212:Flex Consumption has no fixed instance count to set; the minimum is the always-ready setting just below (exportAlwaysReadyInstances), which the check does not read.
        alwaysReady: alwaysReady
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output planId string = plan.id
