// The service's own storage account: Functions host storage (AzureWebJobsStorage: leases, Event Hubs
// checkpoints, timers), the deployment package container, and the pipeline's state:
//   tables      exports (export definitions), exportledger (delivery ledger), exporthealth (health),
//               exportdue (what the health check has to judge)
//   queue       export-replay (backlog replays) and export-replay-poison (the runtime's poison queue),
//               export-notify (webhook notifications), export-health (health check work items)
//   containers  backlog (undelivered signals, append blobs), deadletter (unparseable signals)
// Access is by Microsoft Entra ID only: shared keys (and so SAS and connection strings) are disabled.

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

param location string = resourceGroup().location
param tags object = {}

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@minValue(1)
@description('Delete blobs under backlog/ this many days after their last modification.')
param backlogDeleteAfterDays int = 8

@minValue(1)
@maxValue(365)
@description('Days a deleted blob or container can be restored.')
param softDeleteRetentionDays int = 7

// Network access: public endpoint, firewall open (defaultAction Allow). A Flex Consumption app without
// virtual network integration reaches its host storage from shared, changing outbound addresses, and
// Azure Functions is not a "trusted Microsoft service" that the firewall bypass lets through: denying
// by default would stop the host from starting and the deployment package from being read. Every
// request still needs a Microsoft Entra ID token with a data role, since shared keys (and so SAS and
// connection strings) are disabled. infra/README.md describes the private-network variant.
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  //checkov:skip=CKV_AZURE_206:Replication is the storageSkuName parameter (default Standard_ZRS: survives a zone outage with synchronous copies); geo-replication (Standard_GZRS) is allowed but opt-in: it is asynchronous, so a failover can lose the latest ledger writes anyway, at extra cost.
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    dnsEndpointType: 'Standard'
    // Public endpoint, firewall open: see the note above the resource.
    //checkov:skip=CKV_AZURE_59:A Flex app without VNet integration reaches its host storage over the public endpoint; anonymous access is off (allowBlobPublicAccess false) and shared keys are disabled, so every request needs an Entra token with a data role.
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_35:Deny by default would block the Flex host: its shared outbound IPs cannot be listed and Azure Functions is not a trusted service for the firewall bypass. Use VNet integration + private endpoints to close it.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource backlogContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'backlog'
  properties: {
    publicAccess: 'None'
  }
}

resource deadletterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'deadletter'
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource replayQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'export-replay'
}

// The Functions runtime creates <queue>-poison itself on the first poison message; declaring it up
// front lets alerts and dashboards refer to it from day one. Harmless if the runtime "creates" it again.
resource replayPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'export-replay-poison'
}

resource notifyQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'export-notify'
}

resource healthQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'export-health'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource exportsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'exports'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'exportledger'
}

resource healthTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'exporthealth'
}

resource dueTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'exportdue'
}

// Backstop for the backlog retention that the code enforces (BACKLOG_RETENTION_DAYS): whatever the code
// left behind under backlog/ goes once it has not been written for backlogDeleteAfterDays days.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'backlog-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'appendBlob'
                'blockBlob'
              ]
              prefixMatch: [
                'backlog/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: backlogDeleteAfterDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    backlogContainer
  ]
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
