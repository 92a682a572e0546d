// Per-export health, from the app's custom metrics: saved queries (as functions) in the Log Analytics
// workspace, and a workbook that shows them with project / export pickers.
//
// The queries are in infra/queries/*.kql and read the workspace table AppMetrics (Application Insights
// customMetrics). They expect these metric names, each with the dimensions project_id and export_id:
//   signals_exported, signals_backlogged, signals_dropped, signals_dead_lettered (counters)
//   export_write_failures (counter, extra dimension cause)
//   backlog_signals, backlog_oldest_age_seconds (gauges), batch_latency_ms (histogram)
// shared/telemetry.py emits them (tests/unit/test_telemetry.py checks the names against the .kql files).

param location string = resourceGroup().location
param tags object = {}

@description('Name of the Log Analytics workspace that holds the Application Insights data.')
param workspaceName string

@description('Resource id of the same workspace.')
param workspaceResourceId string

@description('Seed for the workbook\'s GUID name (stable per environment).')
param workbookSeed string

@description('Workbook title.')
param workbookDisplayName string = 'signals-export: export health'

var queries = [
  {
    name: 'export-health'
    alias: 'SignalsExportHealth'
    displayName: 'signals-export: health per export'
    query: loadTextContent('../queries/export-health.kql')
  }
  {
    name: 'export-throughput'
    alias: 'SignalsExportThroughput'
    displayName: 'signals-export: signals by outcome'
    query: loadTextContent('../queries/export-throughput.kql')
  }
  {
    name: 'export-write-failures'
    alias: 'SignalsExportWriteFailures'
    displayName: 'signals-export: write failures by cause'
    query: loadTextContent('../queries/export-write-failures.kql')
  }
  {
    name: 'export-backlog'
    alias: 'SignalsExportBacklog'
    displayName: 'signals-export: backlog size and age'
    query: loadTextContent('../queries/export-backlog.kql')
  }
  {
    name: 'batch-latency'
    alias: 'SignalsExportBatchLatency'
    displayName: 'signals-export: batch latency'
    query: loadTextContent('../queries/batch-latency.kql')
  }
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

// Each saved query is also a function: SignalsExportHealth('<project>', '<export>') in Logs.
resource savedSearches 'Microsoft.OperationalInsights/workspaces/savedSearches@2020-08-01' = [
  for q in queries: {
    parent: workspace
    name: 'signals-export-${q.name}'
    properties: {
      category: 'signals-export'
      displayName: q.displayName
      query: q.query
      functionAlias: q.alias
      functionParameters: 'ProjectFilter:string = \'\', ExportFilter:string = \'\''
      version: 2
    }
  }
]

// In the workbook the same text runs with the pickers' values bound to the two filters.
var filterPrefix = 'let ProjectFilter = \'{ProjectId}\';\nlet ExportFilter = \'{ExportId}\';\n'
var logsQuery = {
  queryType: 0
  resourceType: 'microsoft.operationalinsights/workspaces'
  crossComponentResources: [
    workspaceResourceId
  ]
  timeContextFromParameter: 'TimeRange'
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'title'
      content: {
        json: '## signals-export: export health\nPer-export outcomes from the app\'s custom metrics (AppMetrics). Leave Project and Export empty to see every export.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        style: 'pills'
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        parameters: [
          {
            id: guid(workbookSeed, 'TimeRange')
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 86400000
            }
            typeSettings: {
              allowCustom: true
              selectableValues: [
                {
                  durationMs: 3600000
                }
                {
                  durationMs: 14400000
                }
                {
                  durationMs: 86400000
                }
                {
                  durationMs: 604800000
                }
              ]
            }
          }
          {
            id: guid(workbookSeed, 'ProjectId')
            version: 'KqlParameterItem/1.0'
            name: 'ProjectId'
            label: 'Project'
            type: 1
            value: ''
          }
          {
            id: guid(workbookSeed, 'ExportId')
            version: 'KqlParameterItem/1.0'
            name: 'ExportId'
            label: 'Export'
            type: 1
            value: ''
          }
        ]
      }
    }
    {
      type: 3
      name: 'health'
      content: union(logsQuery, {
        version: 'KqlItem/1.0'
        title: 'Health per export (worst first)'
        query: '${filterPrefix}${queries[0].query}'
        size: 0
        visualization: 'table'
      })
    }
    {
      type: 3
      name: 'throughput'
      content: union(logsQuery, {
        version: 'KqlItem/1.0'
        title: 'Signals by outcome'
        query: '${filterPrefix}${queries[1].query}'
        size: 0
        visualization: 'timechart'
      })
    }
    {
      type: 3
      name: 'write-failures'
      content: union(logsQuery, {
        version: 'KqlItem/1.0'
        title: 'Write failures by cause'
        query: '${filterPrefix}${queries[2].query}'
        size: 0
        visualization: 'table'
      })
    }
    {
      type: 3
      name: 'backlog'
      content: union(logsQuery, {
        version: 'KqlItem/1.0'
        title: 'Backlog: signals waiting and age of the oldest (s)'
        query: '${filterPrefix}${queries[3].query}'
        size: 0
        visualization: 'timechart'
      })
    }
    {
      type: 3
      name: 'latency'
      content: union(logsQuery, {
        version: 'KqlItem/1.0'
        title: 'Batch latency (ms)'
        query: '${filterPrefix}${queries[4].query}'
        size: 0
        visualization: 'timechart'
      })
    }
  ]
  fallbackResourceIds: [
    workspaceResourceId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, workbookSeed, 'signals-export-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: workbookDisplayName
    category: 'workbook'
    sourceId: workspaceResourceId
    serializedData: string(workbookContent)
    version: '1.0'
  }
}

output workbookId string = workbook.id
