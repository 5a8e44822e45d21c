// Syncro <-> Outlook calendar sync: everything it runs on in Azure, in one resource group.
//
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json
//
// A Flex Consumption Function App (Linux, Python 3.11) reaching its Storage account, Key Vault and
// Application Insights with one user-assigned managed identity: no storage key, no connection
// string with a secret, no instrumentation key. Secrets live in Key Vault and are set after the
// first deployment with `az keyvault secret set` (docs/deploy.md), so they never pass through a
// deployment's parameters or history. The app settings below are exactly the ones settings.py
// reads, plus the Functions host's own; tests/infra/test_app_settings.py renders them and runs
// the app's settings validation on them.
//
// Scanned offline by checkov (tests/infra/test_template.py): every check that fails is fixed or
// skipped inside the resource it concerns with a one-line reason.

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

@description('Sign-in authority. /common lets a personal account come back to us and get an explanation.')
param msAuthority string = 'https://login.microsoftonline.com/common'

@description('Your Syncro subdomain: the "acme" of https://acme.syncromsp.com.')
@minLength(1)
param syncroSubdomain string

@description('Microsoft accounts (comma-separated) that may open the admin overview /api/admin.')
param adminEmails string = ''

@description('Let technicians link a personal Microsoft account (outlook.com) instead of a work or school one.')
param allowPersonalAccounts bool = false

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

@description('Most instances the app may scale out to (Flex Consumption allows up to 1000). docs/deploy.md, "Scale-out".')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Memory of each instance in MB; CPU and network grow with it.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Concurrent HTTP requests one instance takes before Flex Consumption adds another (webhooks, pages, ICS).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

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
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(hostSettings, productSettings, rotationSettings, extraSettings)
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
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
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
    name: 'ALLOW_PERSONAL_ACCOUNTS'
    value: allowPersonalAccounts ? 'true' : 'false'
  }
  {
    name: 'ADMIN_EMAILS'
    value: adminEmails
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
@description('The page each technician opens to link their calendar.')
output settingsPageUrl string = '${baseUrl}/api/settings'
@description('Every ICS feed URL starts with this, followed by the tech\'s feed token and .ics.')
output icsBaseUrl string = '${baseUrl}/api/ics/'
