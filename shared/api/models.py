"""The API's documents: what a customer sends (strict: unknown properties are refused) and what the
API answers (never a key nor a webhook secret: only whether one is set).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared import location
from shared.api import rules
from shared.model import AuthMethod, ExportStatus, Granularity, ReplayPlacement
from shared.sas import MAX_LENGTH as MAX_SAS

_REQUEST = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=False)

_URI = (
    "The storage account's endpoint: `https://<account>.dfs.core.windows.net/` (adls) or "
    "`https://<account>.blob.core.windows.net/` (blob)."
)
_WRITE_ONLY: dict[str, Any] = {"writeOnly": True}
_KEY = (
    "The storage account's access key (base64). Write-only: never returned. On a replace or patch, "
    "leave it out to keep the current key; it must be given again when the account (`type` or `uri`) "
    "changes."
)
_SAS = (
    "A shared access signature (SAS) for the filesystem (adls) or container (blob), instead of a key: a "
    "service or user delegation SAS for the whole filesystem or container (`sr=c`) with the permissions "
    "`racwdlm` (adls) or `racwdl` (blob), as the portal's Generate SAS or `az storage container "
    "generate-sas` gives it. Write-only: never returned; the export shows when it expires "
    "(`sasExpiresAt`), its health warns ahead and it is postponed once it expires."
)
_ENTRA = (
    "Microsoft Entra ID, instead of a key: the service signs in to your tenant as its application (or, in "
    "the service's own tenant, as its managed identity), which needs the role Storage Blob Data "
    "Contributor on the filesystem or container, and the filesystem or container claims the project in its "
    "metadata `signalsexportprojects` (read by the destination check, which cannot be skipped). No secret is "
    "given or stored. `POST /api/projects/{projectId}/onboarding` gives the consent link, the exact role "
    "assignment and the claim. Needs an https uri."
)
_TENANT = "Your Microsoft Entra tenant's id (a GUID): the tenant the storage account belongs to."
SignalName = Annotated[str, Field(min_length=1, max_length=rules.MAX_SIGNAL_NAME)]
SignalSelection = (
    Literal["all"] | Annotated[list[SignalName], Field(min_length=1, max_length=rules.MAX_SIGNALS)]
)


class EntraIn(BaseModel):
    """Microsoft Entra ID: the customer's tenant."""

    model_config = _REQUEST

    tenantId: Annotated[str, Field(max_length=36, description=_TENANT)]

    @field_validator("tenantId")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return rules.tenant_id(value)


class AdlsDestinationIn(BaseModel):
    """An ADLS Gen2 filesystem (created if missing) and optional directories under it."""

    model_config = _REQUEST

    type: Literal["adls"]
    uri: Annotated[str, Field(max_length=2048, description=_URI)]
    path: Annotated[
        str,
        Field(
            description="`<filesystem>/<directory>/.../`: the filesystem, then optional directories.",
            json_schema_extra={"minLength": 3, "maxLength": rules.MAX_PATH},
        ),
    ]
    sharedKey: Annotated[
        str | None, Field(max_length=512, description=_KEY, json_schema_extra=_WRITE_ONLY)
    ] = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        rules.storage_uri(value, "adls")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        rules.adls_path(value)
        return value

    sas: Annotated[
        str | None, Field(max_length=MAX_SAS + 1, description=_SAS, json_schema_extra=_WRITE_ONLY)
    ] = None
    entra: Annotated[EntraIn | None, Field(description=_ENTRA)] = None

    @field_validator("sharedKey")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else rules.shared_key(value)

    @field_validator("sas")
    @classmethod
    def _sas(cls, value: str | None) -> str | None:
        return None if value is None else rules.sas_token(value, "adls").token.value

    @field_validator("entra")
    @classmethod
    def _entra(cls, value: EntraIn | None, info: ValidationInfo) -> EntraIn | None:
        return rules.entra_uri(value, info.data.get("uri"))

    @model_validator(mode="after")
    def _one_credential(self) -> AdlsDestinationIn:
        rules.one_credential(name for name in rules.CREDENTIALS if getattr(self, name) is not None)
        return self


class BlobDestinationIn(BaseModel):
    """A Blob container (created if missing), written in the Application Insights export layout."""

    model_config = _REQUEST

    type: Literal["blob"]
    uri: Annotated[str, Field(max_length=2048, description=_URI)]
    container: Annotated[
        str,
        Field(
            description="The container's name: 3 to 63 lowercase letters, digits and single hyphens.",
            json_schema_extra={"minLength": 3, "maxLength": 63},
        ),
    ]
    sharedKey: Annotated[
        str | None, Field(max_length=512, description=_KEY, json_schema_extra=_WRITE_ONLY)
    ] = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        rules.storage_uri(value, "blob")
        return value

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        return rules.storage_name(value, "container")

    sas: Annotated[
        str | None, Field(max_length=MAX_SAS + 1, description=_SAS, json_schema_extra=_WRITE_ONLY)
    ] = None
    entra: Annotated[EntraIn | None, Field(description=_ENTRA)] = None

    @field_validator("sharedKey")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else rules.shared_key(value)

    @field_validator("sas")
    @classmethod
    def _sas(cls, value: str | None) -> str | None:
        return None if value is None else rules.sas_token(value, "blob").token.value

    @field_validator("entra")
    @classmethod
    def _entra(cls, value: EntraIn | None, info: ValidationInfo) -> EntraIn | None:
        return rules.entra_uri(value, info.data.get("uri"))

    @model_validator(mode="after")
    def _one_credential(self) -> BlobDestinationIn:
        rules.one_credential(name for name in rules.CREDENTIALS if getattr(self, name) is not None)
        return self


DestinationIn = Annotated[AdlsDestinationIn | BlobDestinationIn, Field(discriminator="type")]


class NotifyIn(BaseModel):
    """Where state changes are posted, signed with HMAC-SHA256 under `secret`."""

    model_config = _REQUEST

    webhook: Annotated[str, Field(max_length=2048, description="An https URL on a public address.")]
    secret: Annotated[
        str | None,
        Field(
            max_length=rules.SECRET_LENGTH[1],
            description="Signs the notifications. Write-only: never returned; leave it out to keep it.",
            json_schema_extra=_WRITE_ONLY,
        ),
    ] = None

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        return rules.webhook_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else rules.webhook_secret(value)


_IP_FIELD = (
    "A JSON pointer (RFC 6901) to the signal's string field holding the client's IP address, e.g. "
    "`/clientIp` or `/context/location/ip` (`~1` stands for '/', `~0` for '~' in a name)."
)
_LOCATION_KEY = "The top-level member the location is added under (default `location`)."
_ANONYMIZE = (
    "Anonymise the address in the exported signal (default true, as Application Insights did): the last "
    "octet of IPv4 zeroed, the last 80 bits of IPv6."
)


class LocationIn(BaseModel):
    """Add the client's location (from the operator's MaxMind database) to each signal, as Application
    Insights' export did: `continent`, `country` (`isoCode`, `name`), `province` and `city`, those the
    database knows. The rest of the signal is exported byte for byte; a signal without a public address
    at `ipField`, or already holding `key`, is exported as sent."""

    model_config = _REQUEST

    ipField: Annotated[str, Field(max_length=location.MAX_POINTER, description=_IP_FIELD)]
    key: Annotated[str, Field(max_length=location.MAX_KEY, description=_LOCATION_KEY)] = "location"
    anonymize: Annotated[bool, Field(description=_ANONYMIZE)] = True

    @field_validator("ipField")
    @classmethod
    def _ip_field(cls, value: str) -> str:
        return rules.location_field(value)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return rules.location_key(value)

    @model_validator(mode="after")
    def _apart(self) -> LocationIn:
        if location.pointer_tokens(self.ipField)[0] == self.key:
            raise PydanticCustomError(
                "LocationKeyInUse",
                "location.key must differ from the first name in location.ipField: a signal holding the "
                "address under that member already has the key, and would never be enriched",
            )
        return self


class ExportDefinition(BaseModel):
    """What a customer configures: where signals go, which ones, and how files are cut."""

    model_config = _REQUEST

    destination: DestinationIn
    granularity: Annotated[
        Granularity | None,
        Field(description="adls only: one file per `hour` (default) or per `day`."),
    ] = None
    signals: Annotated[
        SignalSelection, Field(description='`"all"`, or the names of the signals to export.')
    ] = "all"
    notify: NotifyIn | None = None
    replayPlacement: Annotated[
        ReplayPlacement,
        Field(
            description="Where signals replayed after an outage go. `current` (default): in the folder of "
            "the time of the replay, where a reader that moves forward through the folders finds them. "
            "`original`: back in their own time bucket, beside the live file, for readers that partition "
            "by event time and re-read old folders."
        ),
    ] = ReplayPlacement.CURRENT
    location: LocationIn | None = None

    @field_validator("granularity")
    @classmethod
    def _granularity(cls, value: Granularity | None, info: ValidationInfo) -> Granularity | None:
        if value is not None and isinstance(info.data.get("destination"), BlobDestinationIn):
            raise PydanticCustomError(
                "GranularityNotAllowed",
                "granularity applies to adls destinations only: blob destinations get a blob per minute",
            )
        return value

    @field_validator("signals", mode="before")
    @classmethod
    def _signals(cls, value: Any) -> Any:
        return rules.signals(value)


class EntraPatch(BaseModel):
    model_config = _REQUEST

    tenantId: Annotated[str | None, Field(max_length=36, description=_TENANT)] = None


class DestinationPatch(BaseModel):
    """A merge patch of the destination: the properties to change; null removes one."""

    model_config = _REQUEST

    type: Literal["adls", "blob"] | None = None
    uri: Annotated[str | None, Field(max_length=2048)] = None
    path: Annotated[str | None, Field(max_length=rules.MAX_PATH)] = None
    container: Annotated[str | None, Field(max_length=63)] = None
    sharedKey: Annotated[
        str | None, Field(max_length=512, description=_KEY, json_schema_extra=_WRITE_ONLY)
    ] = None
    sas: Annotated[
        str | None, Field(max_length=MAX_SAS + 1, description=_SAS, json_schema_extra=_WRITE_ONLY)
    ] = None
    entra: Annotated[EntraPatch | None, Field(description=_ENTRA)] = None


class NotifyPatch(BaseModel):
    model_config = _REQUEST

    webhook: Annotated[str | None, Field(max_length=2048)] = None
    secret: Annotated[str | None, Field(max_length=rules.SECRET_LENGTH[1])] = None


class LocationPatch(BaseModel):
    model_config = _REQUEST

    ipField: Annotated[str | None, Field(max_length=location.MAX_POINTER)] = None
    key: Annotated[str | None, Field(max_length=location.MAX_KEY)] = None
    anonymize: bool | None = None


class ExportPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of an export's definition."""

    model_config = _REQUEST

    destination: DestinationPatch | None = None
    granularity: Granularity | None = None
    signals: SignalSelection | None = None
    notify: NotifyPatch | None = None
    replayPlacement: ReplayPlacement | None = None
    location: LocationPatch | None = None

    @field_validator("signals", mode="before")
    @classmethod
    def _signals(cls, value: Any) -> Any:
        if value is None:  # null removes a member; without a selection an export would take every signal
            raise PydanticCustomError(
                "InvalidSignals",
                'signals cannot be removed (null): send "all" to export every signal, or the names to export',
            )
        return rules.signals(value)


_AUTHENTICATION = "How the service authenticates to the destination: `sharedKey`, `sas` or `entra`."
_SAS_EXPIRES = "sas only: when the SAS expires (`se`); the export is postponed then, unless it is replaced."


class EntraOut(BaseModel):
    tenantId: str


class AdlsDestinationOut(BaseModel):
    type: Literal["adls"]
    uri: str
    path: str
    authentication: AuthMethod = Field(description=_AUTHENTICATION)
    hasSharedKey: bool
    sasExpiresAt: datetime | None = Field(None, description=_SAS_EXPIRES)
    entra: EntraOut | None = None


class BlobDestinationOut(BaseModel):
    type: Literal["blob"]
    uri: str
    container: str
    authentication: AuthMethod = Field(description=_AUTHENTICATION)
    hasSharedKey: bool
    sasExpiresAt: datetime | None = Field(None, description=_SAS_EXPIRES)
    entra: EntraOut | None = None


class NotifyOut(BaseModel):
    webhook: str
    hasSecret: bool


class LocationOut(BaseModel):
    ipField: str
    key: str
    anonymize: bool


class ExportOut(BaseModel):
    """An export as the API shows it."""

    id: str
    projectId: str
    destination: Annotated[AdlsDestinationOut | BlobDestinationOut, Field(discriminator="type")]
    granularity: Granularity | None = None
    signals: Literal["all"] | list[str]
    notify: NotifyOut | None = None
    replayPlacement: ReplayPlacement = ReplayPlacement.CURRENT
    location: LocationOut | None = None
    enabled: bool = Field(description="false after `disable`: nothing is written nor kept.")
    status: ExportStatus = Field(
        description="The service's view of the export's health: `active`, `postponed` (kept in the "
        "backlog while the destination fails), `disabled` (postponed past the backlog's retention)."
    )
    createdAt: datetime
    updatedAt: datetime
    etag: str = Field(description="The export's version, also in the ETag header: send it in If-Match.")


class ExportList(BaseModel):
    value: list[ExportOut]


class ResumeOut(BaseModel):
    """What `resume` started: the export, and how many replay work items were queued."""

    export: ExportOut
    workItems: int


class OnboardingIn(BaseModel):
    """The destination an export will write to with Microsoft Entra ID, as it will be given (`entra`
    with the tenant's id)."""

    model_config = _REQUEST

    destination: DestinationIn


class RoleAssignmentOut(BaseModel):
    role: str = Field(description="The built-in role to assign: Storage Blob Data Contributor.")
    roleDefinitionId: str
    principalClientId: str = Field(description="The client (application) id of the principal to assign.")
    principalType: Literal["application", "managedIdentity"]
    scope: str = Field(description="The filesystem or container, as an ARM scope (fill in yours).")
    azCommand: str = Field(description="The `az role assignment create` command, ready to run.")
    bicep: str = Field(description="The same role assignment as a Bicep file.")


class ClaimOut(BaseModel):
    """The filesystem's or container's metadata that claims it for the project."""

    metadata: str = Field(description="The metadata name on the filesystem or container.")
    value: str = Field(
        description="The project id the value must list, comma-separated with any other projects it names."
    )
    azCommand: str = Field(
        description="The `az storage container metadata update` command for this project alone. It replaces "
        "the container's metadata: give any other names and projects again."
    )


class OnboardingOut(BaseModel):
    """What a customer's tenant grants the service before an export uses Microsoft Entra ID."""

    tenantId: str
    applicationClientId: str = Field(description="The client id of who signs in to the tenant.")
    principal: str = Field(description="Who signs in to the tenant, in words.")
    adminConsentUrl: str | None = Field(
        None,
        description="The link an administrator of the tenant opens once to consent (none in the "
        "service's own tenant).",
    )
    roleAssignment: RoleAssignmentOut
    claim: ClaimOut = Field(
        description="The filesystem or container names the project in its metadata, set by someone who "
        "may change it: the service's application holds roles in many customers' storage, so the claim is "
        "what tells that this storage is the project's. Creating or moving an export to a Microsoft Entra "
        "ID destination is refused (400 DestinationNotClaimed) without it, and cannot skip the check."
    )
    steps: list[str] = Field(description="What to do, in order.")


class ErrorDetail(BaseModel):
    code: str
    message: str
    target: str | None = None
    details: list[ErrorDetail] | None = None
    innererror: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The Azure error shape."""

    error: ErrorDetail
