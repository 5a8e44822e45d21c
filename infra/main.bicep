// Syncro <-> Outlook calendar sync: everything it runs on in Azure, in one resource group.
//
//   python3 infra/check_parameters.py infra/main.parameters.json    # refuses the shipped placeholders
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json
//   (or: make deploy RG=<group>; docs/deploy.md, step 3)
//
// A Flex Consumption Function App (Linux, Python 3.11) reaching its Storage account, Key Vault and
// Application Insights with one user-assigned managed identity: no storage key, no connection
// string with a secret, no instrumentation key. Secrets live in Key Vault and are set after the
// first deployment with `az keyvault secret set` (docs/deploy.md), so they never pass through a
// deployment's parameters or history. The app settings below are exactly the ones settings.py
// reads, plus the Functions host's own; tests/infra/test_app_settings.py renders them and runs
// the app's settings validation on them.
//
// Checked offline against Azure's published resource types (tests/infra/test_azure_types.py) and
// scanned by checkov (tests/infra/test_template.py): every check that fails is fixed or skipped
// inside the resource it concerns with a one-line reason.

targetScope = 'resourceGroup'

// --- parameters ------------------------------------------------------------------------------

@description('Short name for this deployment (lower-case letters and digits); resource names are made from it.')
@minLength(2)
@maxLength(10)
param baseName string = 'calsync'

@description('Azure region for every resource; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Name of the Function App, which is also its host name (<name>.azurewebsites.net). Empty: made from baseName.')
param functionAppName string = ''

@description('Public https base URL of the app when it sits behind a custom domain. Empty: https://<functionAppName>.azurewebsites.net.')
param publicBaseUrl string = ''

@description('Application (client) ID of the Microsoft Entra app registration (docs/deploy.md, step 1).')
@minLength(36)
@maxLength(36)
param msClientId string

@description('Directory (tenant) ID the technicians and admins sign in with: the authority becomes https://login.microsoftonline.com/<this>. Default: the tenant of the subscription you deploy to. "organizations" only together with allowedTenantIds.')
param signInTenantId string = tenant().tenantId

@description('Only with a multitenant registration: the tenant GUIDs (comma-separated) whose accounts may sign in. Empty: only signInTenantId.')
param allowedTenantIds string = ''

@description('Object ids (comma-separated) of Entra security groups whose members are admins, besides users assigned the SyncAdmin app role. Needs the groups claim in ID tokens (docs/deploy.md, step 1).')
param adminGroupIds string = ''

@description('Your Syncro subdomain: the "acme" of https://acme.syncromsp.com.')
@minLength(1)
param syncroSubdomain string

@description('How many days back sync and the ICS feed reach.')
@minValue(1)
@maxValue(365)
param syncWindowPastDays int = 60

@description('How many days ahead sync and the ICS feed reach.')
@minValue(1)
@maxValue(730)
param syncWindowFutureDays int = 60

@description('When an appointment changed on both sides: the latest modification wins, or one side always does.')
@allowed([
  'latest'
  'syncro'
  'outlook'
])
param conflictPolicy string = 'latest'

@description('Queue carrying sync jobs (its poison queue is <name>-poison).')
param syncQueueName string = 'sync-jobs'

@description('Id of the current token-encryption key (1-16 letters, digits, - or _); change it with the key (docs/security.md).')
param tokenEncryptionKeyId string = '1'

@description('During a key rotation only: also reference the Key Vault secret token-encryption-old-keys (docs/security.md).')
param useOldEncryptionKeys bool = false

@description('Most instances each function group may scale out to (per group: the HTTP functions together, each queue function apart). Below 40 is refused in some regions; docs/deploy.md, "Scale-out", says how to go lower where yours allows it.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance in MB; CPU and network grow with it.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Instances of the HTTP functions kept running at all times (0: none, the default). Each one is billed around the clock; it spares the first webhook after a quiet spell a cold start. docs/deploy.md, "Always-ready instances".')
@minValue(0)
@maxValue(4)
param alwaysReadyHttpInstances int = 0

@description('Concurrent HTTP requests one instance takes before Flex Consumption adds another (webhooks, pages, ICS).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Email address that gets the alerts (sync jobs set aside, Graph subscriptions failing, techs to re-link, function errors, Syncro 429s). docs/deploy.md, "Alerts".')
@minLength(6)
param alertEmail string

@description('Object id of the person or group who sets the secrets (az ad signed-in-user show --query id -o tsv). Empty: grant it yourself.')
param secretsOfficerPrincipalId string = ''

@description('Kind of principal secretsOfficerPrincipalId is.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string = 'User'

@description('Storage redundancy: geo-redundant by default (the app\'s state is small); Standard_ZRS or Standard_LRS keep it in one region.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_GRS'

@description('Spread the plan\'s instances over availability zones (only in regions where Flex Consumption offers it).')
param zoneRedundant bool = false

@description('Days Log Analytics keeps the app\'s logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('More app settings, name to string value, for the optional settings docs/configuration.md lists (e.g. {"IMPORT_EXISTING_EVENTS": "true"}). Set them here, not in the portal: each deployment replaces the app settings with the template\'s.')
param extraAppSettings object = {}

@description('Tags put on every resource.')
param tags object = {
  app: 'syncro-outlook-sync'
}

// --- names -----------------------------------------------------------------------------------

var token = uniqueString(resourceGroup().id, baseName)
var appName = empty(functionAppName) ? '${baseName}-${token}' : functionAppName
var storageAccountName = toLower(take('st${baseName}${token}', 24))
var keyVaultName = take('kv-${baseName}-${token}', 24)
var deploymentContainerName = 'app-package'
var baseUrl = empty(publicBaseUrl) ? 'https://${appName}.azurewebsites.net' : publicBaseUrl

// Tenant-bound sign-in (docs/security.md): the login host of the cloud deployed to, so a
// sovereign cloud gets its own (login.microsoftonline.us, ...), never a hard-coded one.
var loginEndpoint = environment().authentication.loginEndpoint
var msAuthority = '${loginEndpoint}${signInTenantId}'

// The Key Vault secrets the app settings reference; docs/deploy.md sets them by these names.
var secretNames = {
  msClientSecret: 'ms-client-secret'
  syncroApiToken: 'syncro-api-token'
  syncroWebhookSecret: 'syncro-webhook-secret'
  tokenEncryptionKey: 'token-encryption-key'
  tokenEncryptionOldKeys: 'token-encryption-old-keys'
}

// Built-in role definitions (ids are the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// --- identity --------------------------------------------------------------------------------

// Created before the app so its roles exist when the app first starts: Key Vault references and
// storage work from the first minute instead of after the next restart.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${baseName}-${token}'
  location: location
  tags: tags
}

// --- storage: tables and queues for the app, blobs for the host and the deployment package --

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without a virtual network reaches storage over its public endpoint; access is Entra ID RBAC only (shared keys off)
  // checkov:skip=CKV_AZURE_43:The name is computed (st + baseName + uniqueString, lower-case, 24 characters at most); tests/infra checks the rule on it
  // checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: a public endpoint that accepts only Entra ID tokens of the app's identity
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
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
        }
        file: {
          enabled: true
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
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption runs the package `func azure functionapp publish` uploads here.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource syncQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: syncQueueName
}

resource syncPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${syncQueueName}-poison'
}

// Blobs: the host's locks (singleton timers), keys and the deployment package. Queues and
// tables: sync jobs and all of the app's state (the app creates its tables on first use).
resource storageBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- Key Vault: the four secrets, read by the app's identity through app-setting references --

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Flex Consumption without a virtual network has no fixed outbound address to allow; access is Entra ID RBAC only
  // checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: the app resolves its Key Vault references over the public endpoint
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource keyVaultSecretsUserRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultSecretsOfficerRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(keyVault.id, secretsOfficerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: secretsOfficerPrincipalId
    principalType: secretsOfficerPrincipalType
  }
}

// --- monitoring ------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${baseName}-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${baseName}-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true // telemetry is accepted only with the app's Entra ID token
  }
}

resource appInsightsPublisherRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- alerts: what an admin must act on, mailed to alertEmail ---------------------------------

// Each rule counts log lines the app (or the Functions host) writes in Application Insights and
// names the section of docs/deploy.md ("Alerts") that says what to do. tests/infra checks that
// every phrase a query looks for is still written by the code, and that every section exists.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${baseName}-${token}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'calsync'
    enabled: true
    emailReceivers: [
      {
        name: 'admin'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertRules = [
  {
    key: 'jobs-set-aside'
    title: 'Sync jobs set aside (poison queue)'
    severity: 1
    frequency: 'PT15M'
    window: 'PT15M'
    threshold: 0
    query: 'traces | where message startswith "sync job poisoned" or message has "Moving message to queue"'
    doc: 'docs/deploy.md#sync-jobs-set-aside'
  }
  {
    key: 'graph-subscriptions'
    title: 'Graph subscriptions failing to renew'
    severity: 2
    frequency: 'PT1H'
    window: 'PT1H'
    threshold: 0
    query: 'traces | where message startswith "subscription work for tech"'
    doc: 'docs/deploy.md#graph-subscriptions-failing'
  }
  {
    key: 'relink'
    title: 'Technicians must link their calendar again'
    severity: 2
    frequency: 'PT1H'
    window: 'PT1H'
    threshold: 0
    query: 'traces | where message has "needs to link again"'
    doc: 'docs/deploy.md#technicians-to-re-link'
  }
  {
    key: 'function-errors'
    title: 'Function invocations failing'
    severity: 1
    frequency: 'PT15M'
    window: 'PT15M'
    threshold: 3
    query: 'requests | where success == false and resultCode !startswith "4"'
    doc: 'docs/deploy.md#function-errors'
  }
  {
    key: 'syncro-429'
    title: 'Syncro answers 429 (too many requests)'
    severity: 3
    frequency: 'PT1H'
    window: 'PT1H'
    threshold: 5
    query: 'traces | where message has "Syncro answered 429"'
    doc: 'docs/deploy.md#syncro-429s'
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in alertRules: {
  name: 'alert-${baseName}-${rule.key}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.title
    description: rule.doc
    severity: rule.severity
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
      customProperties: {
        fix: rule.doc
      }
    }
  }
}]

// --- the Function App ------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:zoneRedundant is a parameter, off by default because not every Flex Consumption region offers zones
  name: 'plan-${baseName}-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Client certificates cannot be asked of browsers signing in, of Microsoft Graph or of Syncro's webhooks
  // checkov:skip=CKV_AZURE_212:Flex Consumption has no fixed worker count; it adds instances on demand up to maximumInstanceCount
  // checkov:skip=CKV_AZURE_213:Flex Consumption replaces unhealthy instances itself; /api/health is for the admin and availability tests
  // checkov:skip=CKV_AZURE_222:Techs' browsers, Microsoft Graph and Syncro's webhooks must reach the app from the internet
  // checkov:skip=CKV_AZURE_78:Flex Consumption refuses siteConfig.ftpsState (ARM 51021); FTP is off through the basicPublishingCredentialsPolicies ftp and scm below
  // checkov:skip=CKV_AZURE_18:siteConfig on Flex Consumption keeps only what Microsoft's Flex samples set (no http20Enabled); HTTP/1.1 serves webhooks and pages
  // checkov:skip=CKV_AZURE_67:Same as CKV_AZURE_18: http20Enabled is left out of a Flex Consumption siteConfig
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    keyVaultReferenceIdentity: identity.id
    // Only what Flex Consumption accepts: newer regional stamps reject ftpsState (ARM error
    // 51021; FTP is off through basicPublishingCredentialsPolicies below) and the plan-level
    // properties of other plans (alwaysOn, linuxFxVersion, functionAppScaleLimit, ...), whose
    // Flex equivalents live in functionAppConfig.
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: concat(hostSettings, productSettings, tenantSettings, adminGroupSettings, rotationSettings, extraSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    storageBlobRole
    storageQueueRole
    storageTableRole
    keyVaultSecretsUserRole
    appInsightsPublisherRole
    deploymentContainer
  ]
}

// Always-ready instances of the HTTP group ('http': every HTTP-triggered function), or none.
var alwaysReady = (alwaysReadyHttpInstances == 0) ? [] : [
  {
    name: 'http'
    instanceCount: alwaysReadyHttpInstances
  }
]

// FTP and basic-auth deployment off: publishing goes through Entra ID (az login).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// The app settings: the Functions host's own (storage and telemetry through the identity) and
// every setting settings.py reads that is not left at its default (docs/configuration.md).
// Secrets are Key Vault references, resolved by the platform with keyVaultReferenceIdentity.
// The storage endpoints come from the account itself, not from a suffix written here, so the
// same template works in sovereign clouds (core.usgovcloudapi.net, core.chinacloudapi.cn).
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'AZURE_CLIENT_ID' // DefaultAzureCredential in the app picks this identity with it
    value: identity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
]

var productSettings = [
  {
    name: 'PUBLIC_BASE_URL'
    value: baseUrl
  }
  {
    name: 'MS_CLIENT_ID'
    value: msClientId
  }
  {
    name: 'MS_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${secretNames.msClientSecret})'
  }
  {
    name: 'MS_AUTHORITY'
    value: msAuthority
  }
  {
    name: 'SYNCRO_BASE_URL'
    value: 'https://${syncroSubdomain}.syncromsp.com/api/v1'
  }
  {
    name: 'SYNCRO_API_TOKEN'
    value: '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${secretNames.syncroApiToken})'
  }
  {
    name: 'SYNCRO_WEBHOOK_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${secretNames.syncroWebhookSecret})'
  }
  {
    name: 'TOKEN_ENCRYPTION_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${secretNames.tokenEncryptionKey})'
  }
  {
    name: 'TOKEN_ENCRYPTION_KEY_ID'
    value: tokenEncryptionKeyId
  }
  {
    name: 'SYNC_QUEUE_NAME'
    value: syncQueueName
  }
  {
    name: 'SYNC_WINDOW_PAST_DAYS'
    value: string(syncWindowPastDays)
  }
  {
    name: 'SYNC_WINDOW_FUTURE_DAYS'
    value: string(syncWindowFutureDays)
  }
  {
    name: 'CONFLICT_POLICY'
    value: conflictPolicy
  }
]

// Set only when given: an empty setting would be one the app reads for nothing.
var tenantSettings = empty(allowedTenantIds) ? [] : [
  {
    name: 'ALLOWED_TENANT_IDS'
    value: allowedTenantIds
  }
]

var adminGroupSettings = empty(adminGroupIds) ? [] : [
  {
    name: 'ADMIN_GROUP_IDS'
    value: adminGroupIds
  }
]

var extraSettings = [for item in items(extraAppSettings): {
  name: item.key
  value: item.value
}]

var rotationSettings = useOldEncryptionKeys ? [
  {
    name: 'TOKEN_ENCRYPTION_OLD_KEYS'
    value: '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${secretNames.tokenEncryptionOldKeys})'
  }
] : []

// --- outputs ---------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output keyVaultName string = keyVault.name
output storageAccountName string = storage.name
output publicBaseUrl string = baseUrl
@description('Redirect URI to register on the Entra app (docs/deploy.md, step 1).')
output oauthRedirectUri string = '${baseUrl}/api/oauth/callback'
@description('Syncro Notification Center webhook: append the syncro-webhook-secret value.')
output syncroWebhookBaseUrl string = '${baseUrl}/api/syncro/notifications/'
@description('Microsoft Graph change notifications arrive here (the app subscribes by itself).')
output graphWebhookUrl string = '${baseUrl}/api/graph/notifications'
@description('Microsoft Graph lifecycle notifications (subscription removed, missed, reauthorization) arrive here.')
output graphLifecycleUrl string = '${baseUrl}/api/graph/lifecycle'
@description('The sign-in authority the app uses (tenant-bound).')
output msAuthority string = msAuthority
@description('The page each technician opens to link their calendar.')
output settingsPageUrl string = '${baseUrl}/api/settings'
@description('Every ICS feed URL starts with this, followed by the tech\'s feed token and .ics.')
output icsBaseUrl string = '${baseUrl}/api/ics/'
