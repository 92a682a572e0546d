"""A small, faithful local emulator of Azure Data Lake Storage Gen2.

Azurite has no ``dfs`` endpoint, so this package serves the ADLS Gen2 REST
operations (and the Blob operations the datalake SDK delegates to) over HTTP,
so the real ``azure-storage-file-datalake`` SDK can run against it::

    from devstack.adls_emulator import AdlsEmulator, DEFAULT_KEY
    from azure.storage.filedatalake import DataLakeServiceClient

    with AdlsEmulator().start() as emu:
        service = DataLakeServiceClient(account_url=emu.url(), credential=DEFAULT_KEY)
        service.create_file_system("signals")

Standard library only. See :class:`AdlsEmulator` for the API, ``python -m
devstack.adls_emulator --help`` for the CLI and :mod:`.control` for the HTTP
control endpoints.
"""

from .emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator
from .faults import OPERATIONS, Fault, RequestRecord

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_KEY", "OPERATIONS", "AdlsEmulator", "Fault", "RequestRecord"]
