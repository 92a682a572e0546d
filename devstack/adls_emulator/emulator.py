"""The public :class:`AdlsEmulator`: lifecycle, accounts, faults, request log."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from .access import AccessRegistry, Assignment
from .auth import AccountRegistry
from .dispatch import respond
from .faults import Fault, FaultRegistry, RequestLog, RequestRecord
from .oauth import TrustedKeys
from .server import EmulatorServer
from .store import Store

DEFAULT_ACCOUNT = "devstoreaccount1"
# The well-known, public Azurite development key.
DEFAULT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AdlsEmulator:
    """A local ADLS Gen2 (dfs + Blob) endpoint the real Azure SDKs can talk to.

    ``accounts`` maps account names to base64 keys (default: Azurite's
    well-known account). ``location`` persists state in a folder across
    restarts; ``None`` keeps it in memory (kept across stop/start of the same
    object). URLs are path-style like Azurite's:
    ``http://127.0.0.1:<port>/<account>``.

    Requests to an account that does not exist are answered **404
    AccountNotFound** (JSON on dfs, XML on Blob). The real service cannot be
    reached at all for a missing account (DNS resolution of
    ``<account>.dfs.core.windows.net`` fails, and the SDK raises
    ``ServiceRequestError``); a local server on one port cannot fail name
    resolution for some accounts only, so it answers with a distinct, explicit
    code instead. Note that SDK ``exists()`` calls turn any 404 into ``False``;
    tests that need the connection-level failure should use a
    ``Fault(drop_connection=True, account=...)`` or stop the emulator.
    """

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        location: str | Path | None = None,
        *,
        verbose: bool = False,
        tls: ssl.SSLContext | None = None,
        trusted_keys: TrustedKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.accounts = AccountRegistry(accounts if accounts is not None else {DEFAULT_ACCOUNT: DEFAULT_KEY})
        self.location = None if location is None else Path(location)
        self.verbose = verbose
        self.faults = FaultRegistry()
        self.log = RequestLog()
        self.store = Store(self.location)
        self.access = AccessRegistry(self.location)
        self.trusted_keys = trusted_keys or TrustedKeys()
        self.clock = clock
        self._tls = tls
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._secure_server: EmulatorServer | None = None
        self._secure_thread: threading.Thread | None = None
        self._host = "127.0.0.1"

    # -- lifecycle -------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0, *, https_port: int | None = None) -> AdlsEmulator:
        """Serve in background threads; ``port=0`` picks a free port. Returns self.

        With a TLS context (``tls=``), the same accounts are also served over HTTPS on
        ``https_port`` (0 or None: a free port): the only listener that takes bearer tokens.
        """
        if self._server is not None:
            raise RuntimeError("emulator already running")
        self.store.open()
        server = EmulatorServer((host, port), partial(respond, self), verbose=self.verbose)
        self._host = host
        self._server = server
        self._thread = self._serve(server, "adls-emulator")
        if self._tls is not None:
            try:
                secure = EmulatorServer(
                    (host, https_port or 0), partial(respond, self), context=self._tls, verbose=self.verbose
                )
            except OSError:
                self.stop()
                raise
            self._secure_server = secure
            self._secure_thread = self._serve(secure, "adls-emulator-https")
        return self

    @staticmethod
    def _serve(server: EmulatorServer, name: str) -> threading.Thread:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving, cut open connections and write persistent state."""
        pairs = [(self._server, self._thread), (self._secure_server, self._secure_thread)]
        self._server = self._thread = self._secure_server = self._secure_thread = None
        for server, thread in pairs:
            if server is not None:
                server.shutdown()
                server.close_connections()
                server.server_close()
            if thread is not None:
                thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> AdlsEmulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator is not running")
        return int(self._server.server_address[1])

    @property
    def https_port(self) -> int:
        if self._secure_server is None:
            raise RuntimeError("the emulator has no HTTPS listener (give it tls=)")
        return int(self._secure_server.server_address[1])

    def url(self, account: str = DEFAULT_ACCOUNT, *, https: bool = False) -> str:
        """Path-style account URL, e.g. ``http://127.0.0.1:10004/devstoreaccount1``
        (``https=True``: the HTTPS listener's, where bearer tokens work).

        The SDK only recognises path-style URLs on 127.0.0.1 or localhost, so a
        wildcard bind address is reported as 127.0.0.1.
        """
        host = self._host if self._host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if https:
            return f"https://{host}:{self.https_port}/{account}"
        return f"http://{host}:{self.port}/{account}"

    # -- accounts --------------------------------------------------------
    def set_account_key(self, account: str, key: str) -> None:
        """Rotate a key: requests signed with the old key now fail 403 AuthenticationFailed."""
        if account not in self.accounts.names():
            raise KeyError(f"unknown account {account!r}")
        self.accounts.set(account, key)

    def add_account(self, account: str, key: str) -> None:
        self.accounts.set(account, key)

    def remove_account(self, account: str) -> None:
        """Delete the account and its data; its requests then fail as for an unknown account."""
        self.accounts.remove(account)
        self.access.forget(account)
        self.store.drop_account(account)

    # -- identity: Entra tenant, shared-key access, roles ----------------------------------------------
    def set_identity(
        self, account: str, *, tenant: str | None = None, allow_shared_key_access: bool | None = None
    ) -> None:
        """The account's Entra tenant (whose tokens it takes) and its ``allowSharedKeyAccess``."""
        self._known(account)
        self.access.configure(account, tenant=tenant, allow_shared_key_access=allow_shared_key_access)

    def assign_role(
        self, account: str, principal: str, role: str, filesystem: str | None = None
    ) -> Assignment:
        """Give ``principal`` (an object id) a Storage Blob Data role at the account or one filesystem."""
        self._known(account)
        return self.access.assign(account, principal, role, filesystem)

    def remove_role(
        self, account: str, principal: str, role: str | None = None, filesystem: str | None = None
    ) -> int:
        """Remove role assignments; in force from the next request. Returns how many went."""
        return self.access.unassign(account, principal, role, filesystem)

    def revoke_user_delegation_keys(self, account: str) -> None:
        """Revoke User Delegation Keys: every user delegation SAS of the account stops working."""
        self._known(account)
        self.access.revoke_delegation_keys(account)

    def identity(self, account: str) -> dict[str, Any]:
        return self.access.get(account).to_json()

    def _known(self, account: str) -> None:
        if account not in self.accounts.names():
            raise KeyError(f"unknown account {account!r}")

    # -- faults ------------------------------------------------------------
    def add_fault(self, fault: Fault) -> int:
        return self.faults.add(fault)

    def remove_fault(self, fault_id: int) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- request log -------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self.log.snapshot()

    def reset_requests(self) -> None:
        self.log.clear()
