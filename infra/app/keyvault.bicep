// Key Vault for the service's key-encryption key (KEY_ENCRYPTION_KEY): the AES-256 key that seals
// customers' storage credentials at rest. Azure RBAC only (no access policies), soft delete and purge
// protection on. The app reads the secret through a Key Vault reference resolved with its
// user-assigned identity, which holds Key Vault Secrets User on this vault (app/rbac.bicep).

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

param location string = resourceGroup().location
param tags object = {}

@secure()
@description('Value of the key-encryption-key secret: base64 32-byte key(s), comma-separated, newest first.')
param keyEncryptionKey string

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret can be recovered.')
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
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
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    //checkov:skip=CKV_AZURE_189:The Key Vault reference in KEY_ENCRYPTION_KEY is resolved by App Service from a Flex app without VNet integration, which a closed vault would refuse; access is RBAC-only (Key Vault Secrets User for the app identity alone).
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_109:Same as CKV_AZURE_189: a firewall (defaultAction Deny) cannot list the Flex app's shared outbound addresses, and App Service Key Vault references are not a trusted-service bypass.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource keyEncryptionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'key-encryption-key'
  properties: {
    value: keyEncryptionKey
    contentType: 'application/vnd.signals-export.kek; base64 AES-256 keys, comma-separated, newest first'
    //checkov:skip=CKV_AZURE_41:The key-encryption key is rotated on purpose (new key first in the comma-separated list) and an expired secret would only break the Key Vault reference; a date in the template is not a rotation.
    attributes: {
      enabled: true
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
// Versionless URI: the app follows the newest version after a rotation (the platform re-reads
// versionless Key Vault references at least daily, and on every app settings change or restart).
output keyEncryptionKeySecretUri string = keyEncryptionKeySecret.properties.secretUri
output keyEncryptionKeySecretName string = keyEncryptionKeySecret.name
