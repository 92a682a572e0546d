"""Storage error codes and messages, as the real service words them.

The store raises :class:`StorageError` with the ADLS Gen2 (dfs) code; the Blob
API layer translates it with :func:`for_blob`, because the same condition has a
different code and message on the two endpoints (``PathNotFound`` on dfs is
``BlobNotFound`` on blob, and so on).
"""

from __future__ import annotations

# code -> (HTTP status, message). Messages are the ones documented for the
# ADLS Gen2 REST API ("Other Status Codes") and the Blob service error codes.
CATALOGUE: dict[str, tuple[int, str]] = {
    "AuthenticationFailed": (
        403,
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature.",
    ),
    # Entra ID, roles and shared-key access
    # (https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes).
    "InvalidAuthenticationInfo": (
        401,
        "Server failed to authenticate the request. Please refer to the information in the "
        "www-authenticate header.",
    ),
    "AuthorizationPermissionMismatch": (
        403,
        "This request is not authorized to perform this operation using this permission.",
    ),
    "AuthorizationFailure": (403, "This request is not authorized to perform this operation."),
    "KeyBasedAuthenticationNotPermitted": (
        403,
        "Key based authentication is not permitted on this storage account.",
    ),
    "AccountNotFound": (
        404,
        "The specified storage account does not exist on this emulator. The real service "
        "would fail to resolve the account's host name instead.",
    ),
    "FilesystemNotFound": (404, "The specified filesystem does not exist."),
    "PathNotFound": (404, "The specified path does not exist."),
    "SourcePathNotFound": (404, "The source path for a rename operation does not exist."),
    "RenameDestinationParentPathNotFound": (
        404,
        "The parent directory of the destination path does not exist.",
    ),
    "FilesystemAlreadyExists": (409, "The specified filesystem already exists."),
    "PathAlreadyExists": (409, "The specified path already exists."),
    "DirectoryNotEmpty": (
        409,
        "The recursive query parameter value must be true to delete a non-empty directory.",
    ),
    "PathConflict": (
        409,
        "The specified path, or an element of the path, exists and its resource type is "
        "invalid for this operation.",
    ),
    "InvalidRenameSourcePath": (
        409,
        "The source directory cannot be the same as the destination directory, nor can the "
        "destination be a subdirectory of the source directory.",
    ),
    "InvalidSourceOrDestinationResourceType": (
        409,
        "The source and destination resource type must be identical.",
    ),
    "ConditionNotMet": (412, "The condition specified using HTTP conditional header(s) is not met."),
    "SourceConditionNotMet": (
        412,
        "The source condition specified using HTTP conditional header(s) is not met.",
    ),
    "InvalidFlushPosition": (
        400,
        "The uploaded data is not contiguous or the position query parameter value is not "
        "equal to the length of the file after appending the uploaded data.",
    ),
    "InvalidResourceName": (400, "The specified resource name contains invalid characters."),
    "InvalidPropertyName": (400, "The property name contains invalid characters."),
    "InvalidHeaderValue": (400, "The value for one of the HTTP headers is not in the correct format."),
    "InvalidQueryParameterValue": (
        400,
        "Value for one of the query parameters specified in the request URI is invalid.",
    ),
    "MissingRequiredQueryParameter": (
        400,
        "A query parameter that's mandatory for this request is not specified.",
    ),
    "MissingRequiredHeader": (400, "An HTTP header that's mandatory for this request is not specified."),
    "InvalidSourceUri": (400, "The source URI is invalid."),
    "ContentLengthMustBeZero": (400, "The Content-Length request header must be zero."),
    "OutOfRangeInput": (400, "One of the request inputs is out of range."),
    "InvalidInput": (400, "One of the request inputs is not valid."),
    "InvalidUri": (400, "The request URI is invalid."),
    "Md5Mismatch": (
        400,
        "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
    ),
    "InvalidRange": (416, "The range specified is invalid for the current size of the resource."),
    "UnsupportedHttpVerb": (405, "The resource doesn't support specified Http Verb."),
    "DirectoryIsNotEmpty": (409, "This operation is not permitted on a non-empty directory."),
    "NotImplemented": (501, "This operation is not implemented by the ADLS Gen2 emulator."),
    "ServerBusy": (503, "The server is busy."),
}

# dfs code -> (blob code, blob message) where the Blob endpoint words it differently.
_BLOB_EQUIVALENTS: dict[str, tuple[str, str]] = {
    "FilesystemNotFound": ("ContainerNotFound", "The specified container does not exist."),
    "PathNotFound": ("BlobNotFound", "The specified blob does not exist."),
    "FilesystemAlreadyExists": ("ContainerAlreadyExists", "The specified container already exists."),
    "PathAlreadyExists": ("BlobAlreadyExists", "The specified blob already exists."),
    # The Blob service really does spell it "specifed".
    "InvalidResourceName": ("InvalidResourceName", "The specifed resource name contains invalid characters."),
}


class StorageError(Exception):
    """A storage-service error response: status, error code, message.

    ``detail`` becomes ``AuthenticationErrorDetail`` in Blob XML errors, which the
    real service uses to explain signature mismatches.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail


def error(code: str, message: str | None = None, **kwargs: object) -> StorageError:
    """Build a StorageError from the catalogue, optionally with a custom message."""
    status, default_message = CATALOGUE[code]
    headers = kwargs.get("headers")
    detail = kwargs.get("detail")
    return StorageError(
        status,
        code,
        message or default_message,
        headers=headers if isinstance(headers, dict) else None,
        detail=detail if isinstance(detail, str) else None,
    )


def for_blob(err: StorageError) -> StorageError:
    """Translate a dfs-worded error into the Blob endpoint's code and message."""
    equivalent = _BLOB_EQUIVALENTS.get(err.code)
    if equivalent is None:
        return err
    code, message = equivalent
    if err.message != CATALOGUE.get(err.code, (0, ""))[1]:
        message = err.message
    return StorageError(err.status, code, message, headers=err.headers, detail=err.detail)
