// Event Hubs: the namespace (Standard, Microsoft Entra ID only, TLS 1.2), the signals hub and the
// consumer group the export function reads with. Producers and the app authenticate with RBAC roles
// (app/rbac.bicep); SAS keys are disabled (disableLocalAuth).

@description('Event Hubs namespace name (6-50 characters).')
@minLength(6)
@maxLength(50)
param name string

param location string = resourceGroup().location
param tags object = {}

param eventHubName string = 'signals'
param consumerGroupName string = 'signals-export'

@minValue(1)
@maxValue(32)
@description('Partitions of the hub. Cannot be changed after creation on the Standard tier.')
param partitionCount int = 8

@minValue(1)
@maxValue(7)
@description('Days events stay in the hub (Standard allows up to 7).')
param messageRetentionInDays int = 7

@minValue(1)
@maxValue(20)
@description('Throughput units.')
param capacity int = 1

@minValue(0)
@maxValue(40)
@description('Auto-inflate ceiling in throughput units; 0 disables auto-inflate.')
param maximumThroughputUnits int = 4

var autoInflate = maximumThroughputUnits > capacity

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    isAutoInflateEnabled: autoInflate
    maximumThroughputUnits: autoInflate ? maximumThroughputUnits : 0
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'signals-export Function App (export_signals)'
  }
}

// serviceBusEndpoint is https://<namespace>.servicebus.windows.net:443/ (other suffixes in sovereign clouds).
var fullyQualifiedNamespace = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]

output namespaceName string = namespace.name
output namespaceId string = namespace.id
output eventHubName string = hub.name
output eventHubId string = hub.id
output consumerGroupName string = consumerGroup.name
output fullyQualifiedNamespace string = fullyQualifiedNamespace
