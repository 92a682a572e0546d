// Application Insights on the Log Analytics workspace. Local (API key) ingestion is disabled: the app
// sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which holds
// Monitoring Metrics Publisher on this component (app/rbac.bicep).

@description('Application Insights component name.')
param name string

param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the Log Analytics workspace that stores the telemetry.')
param workspaceResourceId string

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceResourceId
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

output name string = appInsights.name
output id string = appInsights.id
output connectionString string = appInsights.properties.ConnectionString
