"""The local host: the app's functions run without the Azure Functions host.

It runs the very functions `function_app.py` registers (indexed once, `devstack.functions`):

- the management API (`shared.api.create_api`) on `http://localhost:7071/api`, served by uvicorn,
  beside a few development routes (`devstack.devroutes`: `/_local/...` and the Functions host's
  `/admin/functions/<name>` to run a timer or queue function now);
- the Event Hub function, fed by a real Event Hub when `EventHubConnection` is set, else by the local
  hub (`devstack.sources`);
- the timer function on its schedule (`HEALTH_SCHEDULE`, NCRONTAB);
- the queue function on the replay queue, with the queue trigger's retries and poison queue.

Storage: when `AzureWebJobsStorage` is not set, the host starts Azurite (the service's storage, and a
customer Blob account `customerblob`) and the ADLS Gen2 emulator (a customer account `customerlake`),
keeping their data in the data folder (`.data/` at the repository root) between runs, and stops them
when it stops. It sets every setting the code reads that is not set already (the environment wins),
among them a `KEY_ENCRYPTION_KEY` made on the first run and kept in `.data/key-encryption-key`.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import timespan
from devstack.azurite import ACCOUNT, KEY, Azurite, AzuriteMissing
from devstack.devroutes import dev_app, dispatcher
from devstack.errors import DevstackError, NodeMissing, PortInUse
from devstack.events import HubContext
from devstack.functions import EVENT_HUB, QUEUE, TIMER, Registered, one_of_kind, registered_functions, resolve
from devstack.keyless import KEYLESS_BLOB_ACCOUNT, KeylessStorage
from devstack.schedule import DEPLOYED_SKU, Schedule, ScheduleError, takes_timespans
from devstack.sources import BatchPolicy, EventHubSource, LocalHub, LocalPump
from devstack.triggers import QueuePoller, TimerTrigger
from shared.settings import REPLAY_QUEUE

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
CA_BUNDLE = "REQUESTS_CA_BUNDLE"  # what requests (and so the Azure SDKs) trust: the local CA must be in it
HOST_JSON = ROOT / "host.json"
LOCAL_SETTINGS = ROOT / "local.settings.json"
DEFAULT_PORT = 7071
DEFAULT_STORAGE_PORT = 10000  # Azurite's blob port; queue +1, table +2; the ADLS Gen2 emulator +4 (+5 HTTPS);
# the local Entra ID +6, the managed-identity endpoint +7, the keyless Blob account (Azurite, HTTPS) +8
DEFAULT_SCHEDULE = "0 */1 * * * *"
BLOB_ACCOUNT = "customerblob"
LAKE_ACCOUNT = "customerlake"
MIN_NODE = 18

log = logging.getLogger("signals_export.devstack.host")


@dataclass
class HostOptions:
    """How the local host runs. Every port is configurable; 0 picks a free one."""

    data_dir: Path = DATA
    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    storage_port: int = DEFAULT_STORAGE_PORT
    partitions: int = 4
    batch: BatchPolicy | None = None  # None: host.json's
    queue_polling: float | None = None  # None: host.json's maxPollingInterval
    eventhub_connection: str | None = None  # None: the EventHubConnection setting, if any
    eventhub_check_timeout: float = 15.0
    settings: dict[str, str] = field(default_factory=dict)  # extra settings (the environment still wins)
    access_log: bool = False


# -- checks before anything starts ---------------------------------------------------------------------


def check_port(port: int, bind: str = "127.0.0.1", what: str = "") -> None:
    """Raise PortInUse when something already listens on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                label = f" ({what})" if what else ""
                raise PortInUse(
                    f"Port {port}{label} is in use on {bind}: another local host, `func start` or Azurite "
                    "may be running. Stop it, or choose other ports (--port, --storage-port; 0 picks free "
                    "ones)."
                ) from None
            raise


def free_port(bind: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((bind, 0))
        return int(probe.getsockname()[1])


def check_node() -> str:
    """The Node.js version, or NodeMissing with what to do."""
    node = shutil.which("node")
    if node is None:
        raise NodeMissing(
            "Node.js is not installed (no `node` on PATH). Azurite, the local Azure Storage, runs on "
            f"Node.js {MIN_NODE} or later: install it (https://nodejs.org or your package manager), "
            "then run scripts/run again. Or set AzureWebJobsStorage to a storage account's connection "
            "string to run without local storage."
        )
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        raise NodeMissing(f"`{node} --version` failed: Node.js {MIN_NODE} or later is needed") from None
    if major < MIN_NODE:
        raise NodeMissing(f"Node.js {version} is too old: Azurite needs Node.js {MIN_NODE} or later")
    return version


# -- files kept in the data folder -------------------------------------------------------------------


def _private_file(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(content)


def key_encryption_key(data_dir: Path) -> str:
    """The local KEY_ENCRYPTION_KEY: made on first use, then read back. Never printed."""
    path = data_dir / "key-encryption-key"
    if path.exists():
        return path.read_text().strip()
    from shared.secrets import new_service_key

    value = new_service_key()
    _private_file(path, value + "\n")
    return value


def account_keys(data_dir: Path) -> dict[str, str]:
    """The keys of the local customer accounts (made on first use, kept across runs)."""
    path = data_dir / "accounts.json"
    keys: dict[str, str] = {}
    if path.exists():
        try:
            keys = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
        except ValueError:
            keys = {}
    changed = False
    for account in (BLOB_ACCOUNT, LAKE_ACCOUNT, KEYLESS_BLOB_ACCOUNT):
        if account not in keys:
            keys[account] = new_account_key()
            changed = True
    if changed:
        _private_file(path, json.dumps(keys, indent=2) + "\n")
    return keys


def save_account_key(data_dir: Path, account: str, key: str) -> None:
    keys = account_keys(data_dir)
    keys[account] = key
    _private_file(data_dir / "accounts.json", json.dumps(keys, indent=2) + "\n")


def new_account_key() -> str:
    """A storage account key: 64 random bytes, base64 (88 characters), like Azure's."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def host_json(path: Path = HOST_JSON) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    except (OSError, ValueError):
        return {}


# -- settings ------------------------------------------------------------------------------------------


def template_settings(path: Path = LOCAL_SETTINGS) -> dict[str, str]:
    """The non-empty `Values` of local.settings.json (the template `func start` reads too)."""
    try:
        values = json.loads(path.read_text()).get("Values", {})
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in values.items() if v not in ("", None)}


def local_settings(
    *,
    storage_connection: str,
    key: str,
    token_settings: Mapping[str, str],
    template: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings the local host sets when the environment does not: local.settings.json's, with
    the local storage's connection string, the data folder's key and the development token issuer."""
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "EVENTHUB_NAME": "signals",
        "EVENTHUB_CONSUMER_GROUP": "$Default",
        "HEALTH_SCHEDULE": DEFAULT_SCHEDULE,
        # The emulators' hosts are storage endpoints too (path-style http://127.0.0.1:<port>/<account>).
        "ALLOWED_STORAGE_SUFFIXES": ".blob.core.windows.net,.dfs.core.windows.net,127.0.0.1,localhost",
        "ALLOW_PRIVATE_WEBHOOKS": "true",
        **(template_settings() if template is None else template),
        "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
        "AzureWebJobsStorage": storage_connection,
        **token_settings,
    }
    values.setdefault("KEY_ENCRYPTION_KEY", key)
    return values


@contextmanager
def environment(values: Mapping[str, str], *, replace: Collection[str] = ()) -> Iterator[dict[str, str]]:
    """Set the values that the environment does not already have (and those named in `replace`,
    whatever it has); undo on exit. Yields the result."""
    saved: dict[str, str | None] = {}
    for name, value in values.items():
        if os.environ.get(name) and name not in replace:
            continue
        saved[name] = os.environ.get(name)
        os.environ[name] = value
    try:
        yield {name: os.environ[name] for name in values}
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# -- local storage -------------------------------------------------------------------------------------


_PORT_LABELS = {
    "lake": "ADLS Gen2 emulator",
    "lake_https": "ADLS Gen2 emulator, HTTPS",
    "entra": "local Entra ID",
    "identity": "managed-identity endpoint",
    "keyless_blob": "Azurite with OAuth",
}


class LocalStorage:
    """Azurite (the service's account, and the customer Blob account) and the ADLS Gen2 emulator (the
    customer ADLS Gen2 account), with their data in the data folder."""

    def __init__(self, data_dir: Path, storage_port: int = DEFAULT_STORAGE_PORT) -> None:
        self.data_dir = data_dir
        keyless = KeylessStorage.port_names()
        if storage_port == 0:
            self.ports = {name: free_port() for name in ("blob", "queue", "table", "lake", *keyless)}
        else:
            base = storage_port
            self.ports = {"blob": base, "queue": base + 1, "table": base + 2, "lake": base + 4}
            self.ports |= {name: base + offset for name, offset in keyless.items()}
        self.azurite: Any = None
        self.lake: Any = None
        self.keyless: KeylessStorage | None = None
        self.lake_tenant = ""
        self.keys: dict[str, str] = {}

    def check(self) -> None:
        """Fail fast: the ports are free and Node.js is there."""
        for name, port in self.ports.items():
            check_port(port, "127.0.0.1", _PORT_LABELS.get(name, f"Azurite {name}"))
        check_node()

    def start(self) -> LocalStorage:
        from devstack.adls_emulator import AdlsEmulator

        self.check()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.keys = account_keys(self.data_dir)
        azurite = Azurite(
            location=self.data_dir / "azurite",
            accounts={ACCOUNT: KEY, BLOB_ACCOUNT: self.keys[BLOB_ACCOUNT]},
            blob_port=self.ports["blob"],
            queue_port=self.ports["queue"],
            table_port=self.ports["table"],
        )
        try:
            azurite.start()
        except AzuriteMissing as error:
            raise DevstackError(f"{error} (scripts/run installs it)") from None
        except RuntimeError as error:
            azurite.stop()
            raise DevstackError(f"Azurite did not start: {error}") from None
        self.azurite = azurite
        try:
            self.keyless = KeylessStorage(self.data_dir, self.ports).start(self.keys[KEYLESS_BLOB_ACCOUNT])
        except (OSError, RuntimeError) as error:
            self.stop()
            raise DevstackError(f"The local identity stand-ins did not start: {error}") from None
        lake = AdlsEmulator(
            accounts={LAKE_ACCOUNT: self.keys[LAKE_ACCOUNT]},
            location=self.data_dir / "adls",
            tls=self.keyless.identity.tls.server_context(),
            trusted_keys=self.keyless.trusted_keys,
        )
        try:
            lake.start(port=self.ports["lake"], https_port=self.ports["lake_https"])
            self.lake_tenant = self.keyless.configure_lake(lake, LAKE_ACCOUNT)
        except OSError as error:
            self.stop()
            raise PortInUse(
                f"The ADLS Gen2 emulator cannot listen on port {self.ports['lake']}: {error}"
            ) from None
        self.lake = lake
        return self

    @property
    def connection_string(self) -> str:
        return str(self.azurite.connection_string())

    @property
    def blob_url(self) -> str:
        return str(self.azurite.url("blob", BLOB_ACCOUNT)) if self.azurite is not None else ""

    @property
    def lake_url(self) -> str:
        return str(self.lake.url(LAKE_ACCOUNT)) if self.lake is not None else ""

    def rotate_lake_key(self) -> str:
        key = new_account_key()
        self.lake.set_account_key(LAKE_ACCOUNT, key)
        save_account_key(self.data_dir, LAKE_ACCOUNT, key)
        self.keys[LAKE_ACCOUNT] = key
        return key

    def keyless_status(self) -> dict[str, str]:
        """Where the keyless stand-ins listen and the ids a keyless export needs (empty when stopped)."""
        if self.keyless is None or self.lake is None:
            return {}
        return self.keyless.describe(self.lake_tenant, str(self.lake.url(LAKE_ACCOUNT, https=True)))

    def stop(self) -> None:
        if self.lake is not None:
            self.lake.stop()
            self.lake = None
        if self.keyless is not None:
            self.keyless.stop()
            self.keyless = None
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None


def timer_trigger(settings: Mapping[str, str], data_dir: Path) -> TimerTrigger:
    """The timer function on its schedule, read as the host of the app's plan reads it (`WEBSITE_SKU`,
    else the plan the app is deployed on), with the schedule monitor's status file in `data_dir` unless
    the function turns it off or the schedule fires more than once a minute (TimerSchedule.Create)."""
    function = one_of_kind(TIMER)
    expression = resolve(str(function.trigger.get("schedule", "")), settings)
    sku = settings.get("WEBSITE_SKU") or DEPLOYED_SKU
    try:
        schedule = Schedule.parse(expression, timespans=takes_timespans(sku))
    except ScheduleError as error:
        raise DevstackError(f"The timer's schedule is not valid: {error}") from None
    monitored = bool(function.trigger.get("useMonitor", True)) and not schedule.fires_often(datetime.now(UTC))
    status_file = data_dir / "timers" / f"{function.name}.json" if monitored else None
    return TimerTrigger(function.name, function.handler, schedule, status_file=status_file)


# -- the host ------------------------------------------------------------------------------------------


class LocalHost:
    """Storage, settings, the functions' triggers and the HTTP server, started and stopped together."""

    def __init__(self, options: HostOptions | None = None) -> None:
        self.options = options or HostOptions()
        self.data_dir = self.options.data_dir.resolve()
        self.storage: LocalStorage | None = None
        self.runtime: Any = None
        self.hub: LocalHub | None = None
        self.pump: LocalPump | None = None
        self.eventhub: EventHubSource | None = None
        self.timer: TimerTrigger | None = None
        self.queue: QueuePoller | None = None  # the replay queue's
        self.queues: dict[str, QueuePoller] = {}  # every queue function's, by queue name
        self.settings: dict[str, str] = {}
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._env: Any = None
        self._log_handler: logging.Handler | None = None
        self.issuer: Any = None
        self.started = False

    # addresses

    @property
    def url(self) -> str:
        host = (
            "localhost" if self.options.bind in {"127.0.0.1", "0.0.0.0", "localhost"} else self.options.bind
        )
        return f"http://{host}:{self.options.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def local_storage(self) -> bool:
        return self.storage is not None

    @property
    def lake_url(self) -> str:
        return self.storage.lake_url if self.storage is not None else ""

    @property
    def blob_url(self) -> str:
        return self.storage.blob_url if self.storage is not None else ""

    @property
    def keys(self) -> dict[str, str]:
        """The local customer accounts' keys (empty without local storage)."""
        return self.storage.keys if self.storage is not None else {}

    @property
    def lake(self) -> Any:
        return self.storage.lake if self.storage is not None else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "host.log"

    # lifecycle

    def start(self) -> LocalHost:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def _start(self) -> None:
        options = self.options
        env = os.environ
        user_storage = env.get("AzureWebJobsStorage", "") or env.get(
            "AzureWebJobsStorage__blobServiceUri", ""
        )
        hub_connection = (
            options.eventhub_connection
            or env.get("EventHubConnection", "")
            or template_settings().get("EventHubConnection", "")
        )
        # Fail fast, before anything starts: ports, Node.js, the Event Hub.
        if options.port == 0:
            options.port = free_port(options.bind)
        check_port(options.port, options.bind, "the local host's HTTP port")
        storage = None if user_storage else LocalStorage(self.data_dir, options.storage_port)
        if storage is not None:
            storage.check()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._start_logging()
        registered_functions()  # indexed once, before anything runs
        retry = one_of_kind(EVENT_HUB).retry
        batch = options.batch or BatchPolicy.from_host_json(HOST_JSON)
        if hub_connection:
            eventhub = EventHubSource(
                connection=hub_connection,
                hub=os.environ.get("EVENTHUB_NAME", "signals"),
                consumer_group=os.environ.get("EVENTHUB_CONSUMER_GROUP", "$Default"),
                storage_connection="",
                handler=self._call_event_hub_function,
                policy=batch,
                retry=retry,
                check_timeout=options.eventhub_check_timeout,
            )
            eventhub.check()
            self.eventhub = eventhub

        # Storage.
        storage_connection = user_storage
        if storage is not None:
            self.storage = storage.start()
            storage_connection = storage.connection_string

        # Settings, then the runtime the functions use.
        from devstack.tokens import TokenIssuer

        token_dir = self.data_dir / "devstack"
        issuer = TokenIssuer.load_or_create(token_dir / "dev-token-key.pem")
        values = local_settings(
            storage_connection=storage_connection,
            key=key_encryption_key(self.data_dir),
            token_settings=issuer.settings(token_dir / "dev-jwks.json"),
        )
        if hub_connection:
            values["EventHubConnection"] = hub_connection
        if self.storage is not None and self.storage.keyless is not None:
            # IDENTITY_ENDPOINT/HEADER, AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE: devstack/keyless.py
            identity = self.storage.keyless.identity
            values.update(identity.environment())
            values.update(identity.app_settings())
            machine = os.environ.get(CA_BUNDLE)
            if machine and Path(machine).is_file() and Path(machine) != identity.tls.ca_bundle:
                # The machine names a bundle of its own: trusted too, with the local CA added to it.
                values[CA_BUNDLE] = str(identity.tls.bundle_with(Path(machine)))
        values.update(options.settings)
        self._env = environment(values, replace=(CA_BUNDLE,) if CA_BUNDLE in values else ())
        self.settings = self._env.__enter__()
        self.issuer = issuer

        from shared.runtime import Runtime, use_runtime
        from shared.settings import Settings

        runtime = Runtime(Settings.from_env())
        runtime.provision()
        use_runtime(runtime)
        self.runtime = runtime

        # Triggers.
        self.timer = timer_trigger(self.settings | dict(os.environ), self.data_dir)
        functions = [f for f in registered_functions().values() if f.kind == QUEUE]
        self.queues = {str(f.trigger["queueName"]): self._queue_poller(f, runtime) for f in functions}
        self.queue = self.queues[REPLAY_QUEUE]
        if self.eventhub is not None:
            self.eventhub.storage_connection = storage_connection
        else:
            self.hub = LocalHub(options.partitions, state_file=self.data_dir / "localhub.json")
            self.pump = LocalPump(
                self.hub,
                self._call_event_hub_function,
                policy=batch,
                retry=retry,
                context=HubContext(self.settings["EVENTHUB_NAME"], self.settings["EVENTHUB_CONSUMER_GROUP"]),
            )
        self._start_http()
        self.timer.start()
        for poller in self.queues.values():
            poller.start()
        if self.eventhub is not None:
            self.eventhub.start()
        elif self.pump is not None:
            self.pump.start()
        log.info("local host started", extra={"url": self.url})

    def _start_logging(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_file)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(extra_fields)s")
        )
        handler.addFilter(_ExtraFields())
        handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
            logging.getLogger().setLevel(logging.INFO)
        for noisy in ("azure", "uamqp", "urllib3", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._log_handler = handler

    def _queue_poller(self, function: Registered, runtime: Any) -> QueuePoller:
        from devstack.queue_runner import QueueRunner

        queues = host_json().get("extensions", {}).get("queues", {})
        threshold = queues.get("newBatchThreshold")
        name = str(function.trigger["queueName"])
        runner = QueueRunner(
            queue=runtime.queue(name),
            poison=runtime.queue(f"{name}-poison"),
            handler=function.handler,
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            retry_delay=timespan.seconds(queues.get("visibilityTimeout"), 0.0),
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=None if threshold is None else int(threshold),
            encoding=str(queues.get("messageEncoding", "base64")).lower(),
            function_timeout=timespan.seconds(host_json().get("functionTimeout"), 1800.0),
        )
        polling = self.options.queue_polling
        if polling is None:
            polling = timespan.seconds(queues.get("maxPollingInterval"), 60.0)  # QueuePollingIntervals
        return QueuePoller(runner, max_polling_interval=polling)

    def _call_event_hub_function(self, events: list[Any]) -> None:
        one_of_kind(EVENT_HUB).handler(events)

    def _start_http(self) -> None:
        import uvicorn

        from shared.api import create_api
        from shared.api.config import ApiSettings

        runtime = self.runtime
        api = create_api(lambda: runtime.api, settings=ApiSettings.from_env())
        app = dispatcher(api, dev_app(self))
        config = uvicorn.Config(
            app,
            host=self.options.bind,
            port=self.options.port,
            log_level="warning",
            access_log=self.options.access_log,
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise PortInUse(
                    f"The HTTP server could not listen on {self.options.bind}:{self.options.port}"
                )
            if time.monotonic() > deadline:
                raise DevstackError("The HTTP server did not start in 15 s")
            time.sleep(0.02)
        self._server, self._server_thread = server, thread

    def stop(self) -> None:
        """Stop everything that was started, in reverse order. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(timeout=15)
            self._server = self._server_thread = None
        for part in (self.eventhub, self.pump, *self.queues.values(), self.timer):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping a trigger failed")
        self.eventhub = None
        self.pump = None
        self.queue = None
        self.queues = {}
        self.timer = None
        if self.runtime is not None:
            from shared.runtime import use_runtime

            use_runtime(None)
            self.runtime = None
        if self.storage is not None:
            self.storage.stop()
            self.storage = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        self.started = False

    def __enter__(self) -> LocalHost:
        return self.start() if not self.started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what the walkthrough and the development routes use

    def rotate_lake_key(self) -> str:
        """Regenerate the ADLS Gen2 account's key, as a customer would in the portal. Returns it."""
        if self.storage is None or self.storage.lake is None:
            raise DevstackError("the ADLS Gen2 emulator is not running (the host uses real storage)")
        return self.storage.rotate_lake_key()

    def run_timer_now(self) -> None:
        if self.timer is None:
            raise DevstackError("the host is not running")
        self.timer.run_now()

    def status(self) -> dict[str, Any]:
        source: dict[str, Any]
        if self.hub is not None:
            source = {"kind": "local", **self.hub.status()}
        elif self.eventhub is not None:
            source = {
                "kind": "eventhub",
                "hub": self.eventhub.hub,
                "consumerGroup": self.eventhub.consumer_group,
                "partitions": self.eventhub.partition_ids,
                "delivered": self.eventhub.delivered,
            }
        else:
            source = {"kind": "none"}
        queue: dict[str, Any] = {}
        if self.queue is not None and self.runtime is not None:
            try:
                waiting = self.runtime.replay_queue.get_queue_properties().approximate_message_count
            except Exception:  # noqa: BLE001 - shown only: unknown while the queue does not answer
                waiting = None
            queue = {
                "name": REPLAY_QUEUE,
                "approximateMessages": waiting,
                "handled": self.queue.handled,
                "failures": self.queue.failures,
            }
        return {
            "state": "Running" if self.started else "Stopped",
            "api": self.api_url,
            "source": source,
            "timer": self.timer.status() if self.timer is not None else None,
            "queue": queue,
            "storage": {
                "local": self.local_storage,
                "dataDir": str(self.data_dir),
                "customerBlob": self.blob_url or None,
                "customerLake": self.lake_url or None,
                "keyless": self.storage.keyless_status() if self.storage is not None else {},
            },
        }


class _ExtraFields(logging.Filter):
    """Adds the `extra={...}` fields of a record as one text, for the host's log file."""

    _STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        extra = {k: v for k, v in record.__dict__.items() if k not in self._STANDARD and k != "extra_fields"}
        record.extra_fields = json.dumps(extra, default=str) if extra else ""
        return True
