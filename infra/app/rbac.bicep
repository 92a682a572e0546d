// Every role assignment of the deployment, least privilege, each on the narrowest scope that works.
//
// The app's user-assigned identity:
//   Storage Blob Data Owner            storage account   host storage (AzureWebJobsStorage: blob leases,
//                                                        Event Hubs checkpoints), the deployment package
//                                                        container, and the backlog / deadletter containers.
//                                                        The Flex Consumption docs require Owner (not
//                                                        Contributor) for identity-based host storage.
//   Storage Queue Data Contributor     storage account   export-replay queue (and the runtime's poison queue)
//   Storage Table Data Contributor     storage account   exports, exportledger, exporthealth tables
//   Azure Event Hubs Data Receiver     the signals hub   Event Hubs trigger (read only, this hub only)
//   Key Vault Secrets User             the key vault     resolve the KEY_ENCRYPTION_KEY Key Vault reference
//   Monitoring Metrics Publisher       App Insights      telemetry with Entra ID auth (local auth is disabled)
//
// The optional deploying user (principalId), for local runs against the deployed resources:
//   Storage Blob Data Contributor, Storage Queue Data Contributor, Storage Table Data Contributor on the
//   storage account; Azure Event Hubs Data Receiver and Azure Event Hubs Data Sender on the signals hub
//   (to send test signals). Never Key Vault: the key-encryption key stays with the app.

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

param storageAccountName string
param eventHubsNamespaceName string
param eventHubName string
param keyVaultName string
param applicationInsightsName string

@description('Object id of the deploying user or group; empty for none.')
param userPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' // Azure Event Hubs Data Receiver
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975' // Azure Event Hubs Data Sender
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}

var withUser = !empty(userPrincipalId)

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource eventHubsNamespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespaceName
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: eventHubsNamespace
  name: eventHubName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// ---------------------------------------------------------------------------------------------------
// The app's identity
// ---------------------------------------------------------------------------------------------------

// Storage Blob Data Owner on the storage account (host storage + deployment container + pipeline blobs)
resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: Functions host storage, deployment package, backlog and deadletter containers'
  }
}

// Storage Queue Data Contributor on the storage account (export-replay queue)
resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: export-replay queue'
  }
}

// Storage Table Data Contributor on the storage account (exports, exportledger, exporthealth tables)
resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: exports, exportledger and exporthealth tables'
  }
}

// Azure Event Hubs Data Receiver on the signals hub only (not the namespace)
resource appEventHubsDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventHub.id, identityPrincipalId, roles.eventHubsDataReceiver)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: Event Hubs trigger on the signals hub'
  }
}

// Key Vault Secrets User on the vault (Key Vault reference of KEY_ENCRYPTION_KEY)
resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identityPrincipalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: resolve the KEY_ENCRYPTION_KEY Key Vault reference'
  }
}

// Monitoring Metrics Publisher on Application Insights (Entra ID authenticated ingestion)
resource appMonitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'signals-export app: send telemetry to Application Insights with Microsoft Entra ID'
  }
}

// ---------------------------------------------------------------------------------------------------
// The deploying user (optional)
// ---------------------------------------------------------------------------------------------------

// Storage Blob Data Contributor on the storage account
resource userBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(storageAccount.id, userPrincipalId, roles.storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Storage Queue Data Contributor on the storage account
resource userQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(storageAccount.id, userPrincipalId, roles.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Storage Table Data Contributor on the storage account
resource userTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(storageAccount.id, userPrincipalId, roles.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Azure Event Hubs Data Receiver on the signals hub
resource userEventHubsDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(eventHub.id, userPrincipalId, roles.eventHubsDataReceiver)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Azure Event Hubs Data Sender on the signals hub (send test signals)
resource userEventHubsDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(eventHub.id, userPrincipalId, roles.eventHubsDataSender)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
