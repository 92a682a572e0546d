"""A small, faithful local emulator of Azure Data Lake Storage Gen2.

Azurite has no ``dfs`` endpoint, so this package serves the ADLS Gen2 REST
operations (and the Blob operations the datalake SDK delegates to) over HTTP,
so the real ``azure-storage-file-datalake`` SDK can run against it::

    from devstack.adls_emulator import AdlsEmulator, DEFAULT_KEY
    from azure.storage.filedatalake import DataLakeServiceClient

    with AdlsEmulator().start() as emu:
        service = DataLakeServiceClient(account_url=emu.url(), credential=DEFAULT_KEY)
        service.create_file_system("signals")

Authentication as on the service: SharedKey, SAS (service and user
delegation), and over HTTPS Entra ID bearer tokens with role assignments per
account and filesystem (:mod:`.security`). Standard library plus PyJWT for the
tokens. See :class:`AdlsEmulator` for the API, ``python -m
devstack.adls_emulator --help`` for the CLI and :mod:`.control` for the HTTP
control endpoints.
"""

from .access import CONTRIBUTOR, DELEGATOR, OWNER, READER
from .emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator
from .faults import OPERATIONS, Fault, RequestRecord
from .oauth import TrustedKeys

__all__ = [
    "CONTRIBUTOR",
    "DEFAULT_ACCOUNT",
    "DEFAULT_KEY",
    "DELEGATOR",
    "OPERATIONS",
    "OWNER",
    "READER",
    "AdlsEmulator",
    "Fault",
    "RequestRecord",
    "TrustedKeys",
]
