// Alerts for operators (Azure Monitor log search alert rules on the Log Analytics workspace), each on a
// query of infra/alerts/*.kql that returns one number, `value`, compared with a threshold parameter.
// infra/README.md (Alerts) says what each one means and what to do. With alertEmail set, an action group
// mails it; without, the alerts show in the portal (Monitor > Alerts) only.

param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the Log Analytics workspace that holds the Application Insights data.')
param workspaceResourceId string

@description('Prefix of the rules\' names (stable per environment).')
param namePrefix string

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

var rules = [
  {
    name: 'replay-poison'
    displayName: 'signals-export: replay items in the poison queue'
    severity: 2
    window: 'PT15M'
    threshold: poisonMessagesThreshold
    query: loadTextContent('../alerts/replay-poison.kql')
  }
  {
    name: 'dead-letters'
    displayName: 'signals-export: events dead-lettered'
    severity: 3
    window: 'PT1H'
    threshold: deadLettersPerHourThreshold
    query: loadTextContent('../alerts/dead-letters.kql')
  }
  {
    name: 'exports-postponed'
    displayName: 'signals-export: exports postponed'
    severity: 3
    window: 'PT15M'
    threshold: postponedExportsThreshold
    query: loadTextContent('../alerts/exports-postponed.kql')
  }
  {
    name: 'backlog-age'
    displayName: 'signals-export: oldest backlog'
    severity: 2
    window: 'PT15M'
    threshold: backlogAgeHoursThreshold
    query: loadTextContent('../alerts/backlog-age.kql')
  }
  {
    name: 'batch-latency-p99'
    displayName: 'signals-export: batch latency p99 (signals arriving late)'
    severity: 2
    window: 'PT15M'
    threshold: batchLatencyP99SecondsThreshold
    query: loadTextContent('../alerts/batch-latency-p99.kql')
  }
  {
    name: 'health-check-overrun'
    displayName: 'signals-export: health check overrunning its period'
    severity: 2
    window: 'PT15M'
    threshold: healthCheckLoadPercentThreshold
    query: loadTextContent('../alerts/health-check-overrun.kql')
  }
  {
    name: 'export-failures'
    displayName: 'signals-export: Event Hubs function failing or retrying'
    severity: 1
    window: 'PT15M'
    threshold: exportFailuresThreshold
    query: loadTextContent('../alerts/export-failures.kql')
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'sigexport'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [actionGroup.id]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: '${namePrefix}-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: 'infra/README.md, Alerts: ${rule.name}'
      severity: rule.severity
      enabled: true
      scopes: [workspaceResourceId]
      evaluationFrequency: 'PT5M'
      windowSize: rule.window
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Maximum'
            metricMeasureColumn: 'value'
            operator: 'GreaterThan'
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: actionGroups
      }
    }
  }
]

output ruleNames array = [for (rule, i) in rules: alertRules[i].name]
