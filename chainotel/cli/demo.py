"""``chainotel demo``: the whole product on one machine, in one command.

Starts ``chainotel-analyzer serve`` on its embedded chDB store (a fresh data directory), starts the
five trading-platform services of ``examples/`` under ``opentelemetry-instrument`` (configured by
environment variables only), drives a bounded number of requests with a progress bar, prints the
chain report, and stops everything it started — at the end, on Ctrl-C, SIGTERM or SIGHUP
(``--keep-running`` leaves the stack up until one of those). If the demo itself is killed
(SIGKILL), its children get SIGTERM from the kernel (Linux ``PR_SET_PDEATHSIG``). The temporary
data directory is removed at the end unless ``--data-dir`` named it, ``--keep-running`` was given
or the demo failed (its logs are kept for the error). Register on a typer app with :func:`register`.

With ``--jaeger`` (the default when ``make peers`` has built Jaeger v2 and the Collector, see
:func:`peer_binaries`) the services export to the OpenTelemetry Collector running
``collector-config/otel-collector.yaml``, which sends every span to Jaeger v2
(``deploy/jaeger/jaeger.yaml``, UI on :16686 when free) and to the analyzer, whose ``jaeger_url``
links then open the same trace in Jaeger.

:class:`Stack` is the reusable part: the end-to-end tests and ``bench/load.py`` start the same
processes through it, on free 127.0.0.1 ports (:func:`free_port`, also the one port picker of the
tests and benchmarks).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

import httpx
import typer

Mode = Literal["chainotel", "otel", "none"]


@dataclass(frozen=True)
class DemoService:
    """One demo service: ``service.name``, module in ``examples/`` and default port."""

    name: str
    module: str
    port: int

    @property
    def env_key(self) -> str:
        """The ``DEMO_<NAME>_URL`` variable other services read this service's URL from."""
        return "DEMO_" + self.name.upper().replace("-", "_") + "_URL"


SERVICES: tuple[DemoService, ...] = (
    DemoService("api-gateway", "api_gateway", 8000),
    DemoService("data-bridge", "data_bridge", 8001),
    DemoService("ai-provider", "ai_provider", 8005),
    DemoService("trading-engine", "trading_engine", 8007),
    DemoService("database-service", "database_service", 8008),
)


def examples_dir() -> Path:
    """Directory of the demo services: ``CHAINOTEL_DEMO_DIR``, else ``examples/`` of the source tree.

    Raises ``FileNotFoundError`` saying how to fix it when neither exists (e.g. a wheel install).
    """
    from chainotel.settings import DistroSettings  # noqa: PLC0415

    configured = DistroSettings.from_env().demo_dir
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[2] / "examples")
    for path in candidates:
        if (path / "api_gateway.py").exists():
            return path
    raise FileNotFoundError(f"demo services not found in {', '.join(map(str, candidates))}; "
                            "run from a source checkout or set CHAINOTEL_DEMO_DIR to the examples/ directory")


def peer_binaries() -> tuple[Path, Path, Path, Path] | None:
    """``(jaeger, otelcol-chainotel, jaeger.yaml, otel-collector.yaml)`` when all four exist, else
    ``None``. The programs come from ``CHAINOTEL_PEERS_BIN`` or ``.peers/bin`` of the source tree
    (``make peers``); the configurations from ``deploy/jaeger/`` and ``collector-config/`` beside it."""
    root = Path(__file__).resolve().parents[2]
    from chainotel.settings import DistroSettings  # noqa: PLC0415

    bin_dir = Path(DistroSettings.from_env().peers_bin or root / ".peers" / "bin")
    found = (bin_dir / "jaeger", bin_dir / "otelcol-chainotel", root / "deploy" / "jaeger" / "jaeger.yaml",
             root / "collector-config" / "otel-collector.yaml")  # fmt: skip
    return found if all(path.is_file() for path in found) else None


def load_traffic() -> ModuleType:
    """The traffic generator ``examples/traffic.py`` as a module (it is not an installed package)."""
    path = examples_dir() / "traffic.py"
    spec = importlib.util.spec_from_file_location("chainotel_demo_traffic", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (Linux ``ip_local_port_range``; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and was not handed out before by this process.

    Drawn at random *below* the kernel's ephemeral range, so an outgoing connection of any process
    cannot take it between this call and the caller's ``bind`` (ports handed out by ``bind(0)``
    come from that range and lose that race under load). Another process binding the same port on
    purpose can still win; good enough for tests and local stacks.

    Raises:
        OSError: when no port in 20000..(ephemeral low - 1) could be found free in 200 draws.
    """
    low, high = 20000, max(_ephemeral_low() - 1, 20001)
    for _ in range(200):
        port = random.randint(low, high)
        if port not in _HANDED_OUT and port_is_free(port):
            _HANDED_OUT.add(port)
            return port
    raise OSError(f"no free TCP port on 127.0.0.1 in {low}..{high}")


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_INSTALL_DEMO = "install the demo extra: pip install 'chainotel[demo]'"


def _bin(name: str) -> str:
    """A console script of this environment (beside the interpreter), else from PATH.

    Raises ``FileNotFoundError`` naming the extra to install when it is in neither place.
    """
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found; {_INSTALL_DEMO}")
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when the process that started it dies,
    even by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``, as the analyzer's decoder processes do);
    ``None`` where ``prctl`` does not exist. The signal follows the starting *thread*: start the
    children from a thread that lives as long as they should (the main thread).

    ``prctl`` is looked up here, in the parent: the function run between fork and exec only calls it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Process:
    """A child process with its output in a log file; :meth:`stop` ends it (SIGTERM, then SIGKILL)."""

    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout_s`` seconds for a clean exit, then SIGKILL (and wait up to 5 s)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """The analyzer and the five demo services as local processes on 127.0.0.1.

    - ``workdir``: logs (``<name>.log``) and the analyzer's chDB data (``data/``).
    - ``mode``: ``"chainotel"`` (``opentelemetry-instrument`` with the chainotel distro),
      ``"otel"`` (``opentelemetry-instrument``; the caller picks distro/configurator in ``extra_env``)
      or ``"none"`` (plain uvicorn, no tracing).
    - ``ports``: service name → port; default: the well-known ports when ``free_ports`` is false,
      else ports the OS hands out. ``analyzer_http_port``/``analyzer_grpc_port`` likewise (4318/4317).
    - ``slow`` (``DEMO_SLOW``, e.g. ``"ai-provider:200ms"``), ``error_rate``, ``seed``: fault injection.
    - ``with_analyzer``: start ``chainotel-analyzer serve``; else spans go to ``otlp_endpoint``.
    - ``jaeger``: also start Jaeger v2 and the Collector (:func:`peer_binaries`; ``FileNotFoundError``
      when not built); the services export to the Collector, which feeds Jaeger and the analyzer, and
      the analyzer's ``jaeger_url`` points at ``jaeger_url`` (UI port ``jaeger_ui_port``, default
      16686 unless ``free_ports``).

    Use as a context manager; every process it started is stopped on exit, also on errors. The
    children also get SIGTERM if this process dies without stopping them (see :func:`_die_with_parent`);
    they run in sessions of their own, so a terminal's Ctrl-C reaches only this process, which stops
    them in order (services first, so their last spans reach the analyzer).
    Raises ``RuntimeError`` with the process's last log lines when something does not come up.
    """

    workdir: Path
    mode: Mode = "chainotel"
    free_ports: bool = True
    slow: str = ""
    error_rate: float = 0.02
    seed: int = 42
    with_analyzer: bool = True
    otlp_endpoint: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    analyzer_http_port: int = 0
    analyzer_grpc_port: int = 0
    jaeger: bool = False
    jaeger_ui_port: int = 0
    processes: list[Process] = field(default_factory=list)
    _jaeger_otlp: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for svc in SERVICES:
            self.ports.setdefault(svc.name, free_port() if self.free_ports else svc.port)
        if self.with_analyzer:
            self.analyzer_http_port = self.analyzer_http_port or (free_port() if self.free_ports else 4318)
            self.analyzer_grpc_port = self.analyzer_grpc_port or (free_port() if self.free_ports else 4317)
        if self.jaeger:
            self.jaeger_ui_port = self.jaeger_ui_port or (free_port() if self.free_ports else 16686)

    # -- addresses --------------------------------------------------------------------------------
    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def analyzer_url(self) -> str:
        return f"http://127.0.0.1:{self.analyzer_http_port}"

    @property
    def jaeger_url(self) -> str | None:
        """Jaeger's UI and query API, when ``jaeger`` is on."""
        return f"http://127.0.0.1:{self.jaeger_ui_port}" if self.jaeger else None

    def entry(self):
        """Entry URLs for the traffic generator (``traffic.Entry``)."""
        return load_traffic().Entry(self.url("api-gateway"), self.url("data-bridge"), self.url("ai-provider"))

    # -- life cycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> Process:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir, start_new_session=True, preexec_fn=_die_with_parent())
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def _wait_healthy(self, proc: Process, url: str, timeout_s: float) -> None:
        """Poll ``url`` until it answers 200, for at most ``timeout_s`` seconds; ``RuntimeError`` with
        the log's last lines if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; last log lines ({proc.log}):\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} not healthy at {url} after {timeout_s:.0f} s; last log lines ({proc.log}):\n{proc.tail()}")

    def base_env(self) -> dict[str, str]:
        """The parent's environment without OTEL_* (so a user's settings do not leak into the demo)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}

    def service_env(self, svc: DemoService) -> dict[str, str]:
        """Environment of one demo service: downstream URLs, faults and — unless ``mode == "none"`` —
        the ``OTEL_*`` settings that make ``opentelemetry-instrument`` export to the analyzer."""
        env = self.base_env()
        env.update({other.env_key: self.url(other.name) for other in SERVICES})
        env.update(DEMO_SLOW=self.slow, DEMO_ERROR_RATE=str(self.error_rate), DEMO_SEED=str(self.seed))
        if svc.name == "database-service":  # its SQLite file, relative to the work directory (the cwd)
            env["DEMO_DB_PATH"] = "trading.db"
        if self.mode != "none":
            env.update(
                OTEL_SERVICE_NAME=svc.name,
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_METRICS_EXPORTER="none",
                OTEL_LOGS_EXPORTER="none",
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp_endpoint or self.analyzer_url,
                OTEL_BSP_SCHEDULE_DELAY="200",
            )
            if svc.name == "ai-provider":
                # The openai client's own HTTP transport (httpx2) left untraced: its span, under the
                # model call's gen_ai span, names no peer, so the model's time would be charged to
                # ai-provider instead of the model call (the demo's other calls use httpx, still traced).
                env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "httpx2"
        if self.mode == "chainotel":
            env.update(OTEL_PYTHON_DISTRO="chainotel", OTEL_PYTHON_CONFIGURATOR="chainotel")
        env.update(self.extra_env)
        return env

    def start_analyzer(self) -> None:
        data = self.workdir / "data"
        cmd = [_bin("chainotel-analyzer"), "serve", "--host", "127.0.0.1", "--grpc-port", str(self.analyzer_grpc_port),
               "--http-port", str(self.analyzer_http_port), "--clickhouse-url", f"chdb://{data.resolve()}"]
        env = self.base_env()
        if self.jaeger:
            env["CHAINOTEL_JAEGER_UI_URL"] = self.jaeger_url
        proc = self._spawn("analyzer", cmd, env)
        self._wait_healthy(proc, f"{self.analyzer_url}/health", timeout_s=90)

    def start_services(self) -> None:
        app_dir = str(examples_dir())
        prefix = [] if self.mode == "none" else [_bin("opentelemetry-instrument")]
        started = []
        for svc in SERVICES:
            cmd = prefix + [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, f"{svc.module}:app",
                            "--host", "127.0.0.1", "--port", str(self.ports[svc.name]), "--no-access-log", "--log-level", "warning"]
            started.append((svc, self._spawn(svc.name, cmd, self.service_env(svc))))
        for svc, proc in started:
            self._wait_healthy(proc, f"{self.url(svc.name)}/health", timeout_s=60)

    def start_jaeger(self) -> None:
        """Jaeger v2 (in-memory storage), before the analyzer so its links have a target."""
        jaeger, _, config, _ = self._peers()
        self._jaeger_otlp = f"127.0.0.1:{free_port()}"
        health = free_port()
        env = self.base_env() | {
            "JAEGER_OTLP_GRPC_ENDPOINT": self._jaeger_otlp, "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{self.jaeger_ui_port}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}", "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
        }  # fmt: skip
        proc = self._spawn("jaeger", [str(jaeger), "--config", str(config)], env)
        self._wait_healthy(proc, f"http://127.0.0.1:{health}/status", timeout_s=60)

    def start_collector(self) -> None:
        """The Collector with collector-config/otel-collector.yaml on free ports: OTLP in, Jaeger and
        the analyzer out; the services' ``otlp_endpoint`` becomes its OTLP/HTTP receiver."""
        _, otelcol, _, config = self._peers()
        http_port, health = free_port(), free_port()
        env = self.base_env() | {
            "OTEL_COLLECTOR_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}", "OTEL_COLLECTOR_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
            "OTEL_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health}", "JAEGER_OTLP_ENDPOINT": self._jaeger_otlp,
            "CHAINOTEL_ANALYZER_ENDPOINT": self.otlp_endpoint or self.analyzer_url,
        }  # fmt: skip
        cmd = [str(otelcol), "--config", str(config), "--config", "yaml:service::telemetry::metrics::level: none"]
        proc = self._spawn("otel-collector", cmd, env)
        self._wait_healthy(proc, f"http://127.0.0.1:{health}/", timeout_s=60)
        self.otlp_endpoint = f"http://127.0.0.1:{http_port}"

    def _peers(self) -> tuple[Path, Path, Path, Path]:
        found = peer_binaries()
        if found is None:
            raise FileNotFoundError("Jaeger v2 and the Collector are not built: run `make peers` (needs Go >= 1.26)")
        return found

    def start(self) -> None:
        if self.jaeger:
            self.start_jaeger()
        if self.with_analyzer:
            self.start_analyzer()
        if self.jaeger:
            self.start_collector()
        self.start_services()

    def stop(self) -> None:
        """Stop in reverse start order: the services first (their span processors flush on SIGTERM),
        then the Collector (it drains its queues), the analyzer, Jaeger."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()


# --- the report -------------------------------------------------------------------------------------

def _ms(value) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _pct(value) -> str:
    """A 0–1 rate as a percentage."""
    if value is None:
        return "-"
    return f"{float(value) * 100:.1f}%"


def wait_until_stored(client, instance_ids: list[str], timeout_s: float = 30.0) -> int:
    """Poll the analyzer for at most ``timeout_s`` seconds until the traces of ``instance_ids`` can be
    read back (their critical path answers); return how many were found. Spans leave the services
    every 200 ms (OTEL_BSP_SCHEDULE_DELAY)."""
    from chainotel.cli.client import AnalyzerError

    deadline = time.monotonic() + timeout_s
    pending = list(instance_ids)
    while pending and time.monotonic() < deadline:
        still = []
        for cid in pending:
            try:
                client.critical_path(cid)
            except AnalyzerError:
                still.append(cid)
        pending = still
        if pending:
            time.sleep(0.5)
    return len(instance_ids) - len(pending)


def chain_report(client, results: list, since: float) -> list:
    """Rich renderables of the chain report over the window starting at ``since`` (Unix seconds):
    per chain (traces, p50/p95 ms, error rate, SLA compliance, health, top bottleneck), the slowest
    trace's critical-path waterfall, anomalies. ``results`` are the traffic generator's results."""
    from rich.markup import escape
    from rich.table import Table

    from chainotel.cli.client import AnalyzerError, anomalies_table, waterfall

    parts: list = []
    health_rows: dict[str, dict] = {}
    try:
        doc = client.health()
        health_rows = {r["chain"]: r for r in doc.get("chains", [])}
    except AnalyzerError as exc:
        parts.append(f"[yellow]health overview unavailable: {escape(str(exc))}[/]")

    table = Table(title="chains in this run", title_justify="left")
    for col in ("chain", "traces", "p50 ms", "p95 ms", "errors", "in SLA", "health", "top bottleneck"):
        table.add_column(col, justify="left" if col in ("chain", "health", "top bottleneck") else "right")
    for chain in sorted({r.chain for r in results}):
        h = health_rows.get(chain, {})
        top = "-"
        try:
            ranking = client.bottlenecks(str(int(since)), chain=chain).get("ranking", [])
            if ranking:
                best = ranking[0]
                top = f"{best.get('service')}{' ' + best['operation'] if best.get('operation') else ''} {_pct(best.get('share'))}"
        except AnalyzerError as exc:
            top = f"unavailable ({str(exc)[:40]})"
        score = h.get("score")
        table.add_row(chain, str(h.get("traces", "-")), _ms(h.get("p50_ms")), _ms(h.get("p95_ms")),
                      _pct(h.get("error_rate")), _pct(h.get("sla_compliance")),
                      f"{h.get('status', '-')}{f' {score}' if score is not None else ''}", top)
    parts.append(table)

    ok = [r for r in results if r.ok]
    if ok:
        slowest = max(ok, key=lambda r: r.duration_ms)
        try:
            parts.append(f"\n[bold]Slowest request[/]: {slowest.chain} {slowest.flow}, {slowest.duration_ms:.1f} ms, chain {slowest.instance_id}"
                         f"\n  {client.base_url}/ui/traces/{slowest.instance_id}")
            parts.append(waterfall(client.critical_path(slowest.instance_id)))
        except AnalyzerError as exc:
            parts.append(f"[yellow]critical path of {slowest.instance_id} unavailable: {escape(str(exc))}[/]")
    try:
        found = client.anomalies()
        found["anomalies"] = sorted(found.get("anomalies", []), key=lambda a: -abs(a.get("z_score") or 0))[:10]
        parts.append(anomalies_table(found))
    except AnalyzerError as exc:
        parts.append(f"[yellow]anomalies unavailable: {escape(str(exc))}[/]")
    return parts


def next_steps(analyzer_url: str, example_instance_id: str | None, since: float, jaeger_url: str | None = None) -> str:
    """The analyzer URLs and CLI commands to try next (``since``: Unix seconds of the run's start),
    and the trace in Jaeger's UI when ``jaeger_url`` is given."""
    cid = example_instance_id or "<chain-id>"
    env = "" if analyzer_url == "http://127.0.0.1:4318" else f"CHAINOTEL_ANALYZER_URL={analyzer_url} "
    return "\n".join([
        "[bold]Where to look next[/]",
        f"  console           {analyzer_url}/ui/",
        f"  slowest request   {analyzer_url}/ui/traces/{cid}",
        f"  API (OpenAPI)     {analyzer_url}/docs",
        f"  critical path     {analyzer_url}/api/v1/traces/{cid}/critical-path",
        *([f"  Jaeger UI         {jaeger_url}/trace/{cid.replace('-', '')}"] if jaeger_url else []),
        f"  health            {analyzer_url}/api/v1/analytics/chains/health/overview",
        f"  bottlenecks       {analyzer_url}/api/v1/analytics/bottlenecks?chain=A2&since={int(since)}",
        f"  CLI               {env}chainotel trace {cid}",
        f"                    {env}chainotel bottlenecks --chain A2 --since 15m",
        f"                    {env}chainotel health | anomalies | impact ai-provider | monitor",
    ])


# --- the command -------------------------------------------------------------------------------------

_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While inside: SIGTERM and SIGHUP raise ``KeyboardInterrupt`` (message: the signal's name),
    so they take the same shutdown path as Ctrl-C. The previous handlers are restored on exit.
    Does nothing outside the main thread (only it may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signums = [getattr(signal, name) for name in _STOP_SIGNALS if hasattr(signal, name)]
    previous = {signal.SIGINT: signal.getsignal(signal.SIGINT)}  # restored too: shutdown ignores it
    previous.update({signum: signal.signal(signum, interrupt) for signum in signums})
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_stop_signals() -> None:
    """Ignore SIGINT, SIGTERM and SIGHUP (used while shutting down, so a repeated Ctrl-C or signal
    cannot cut the shutdown short); :func:`_stop_signals_interrupt` restores the handlers afterwards."""
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", *_STOP_SIGNALS):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)


def demo(keep_running: bool = typer.Option(False, "--keep-running", help="Leave the stack up after the report until Ctrl-C or SIGTERM; keep its data directory."),
         requests: int = typer.Option(300, "--requests", min=1, max=100_000, help="Number of requests to drive."),
         concurrency: int = typer.Option(8, "--concurrency", min=1, max=200, help="Requests in flight."),
         slow: str = typer.Option("ai-provider:200ms", "--slow", help="Injected slowdown, service:duration ('' for none)."),
         error_rate: float = typer.Option(0.02, "--error-rate", min=0.0, max=1.0, help="Injected failure probability per call."),
         data_dir: Path = typer.Option(None, "--data-dir", help="Analyzer data directory, kept (default: a fresh temporary one, removed at the end)."),
         free_ports: bool = typer.Option(False, "--free-ports", help="Use any free ports instead of 4317/4318 and 8000-8008."),
         jaeger: bool = typer.Option(None, "--jaeger/--no-jaeger", show_default="on when `make peers` has built them",
                                     help="Also run Jaeger v2 and the OpenTelemetry Collector; the analyzer links to the trace in Jaeger.")) -> None:
    """Run the trading-platform demo end to end and print the chain report."""
    from rich.console import Console
    from rich.markup import escape

    from chainotel.cli.client import AnalyzerError

    console = Console()
    if importlib.util.find_spec("websockets") is None:  # the services' and the traffic's WebSocket flow (C1)
        console.print(f"[bold red]error:[/] the demo needs the websockets package; {escape(_INSTALL_DEMO)}", highlight=False)
        raise typer.Exit(1)
    if jaeger is None:
        jaeger = peer_binaries() is not None
    elif jaeger and peer_binaries() is None:
        console.print("[bold red]error:[/] --jaeger needs Jaeger v2 and the Collector: run `make peers` (Go >= 1.26)", highlight=False)
        raise typer.Exit(1)
    workdir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="chainotel-demo-"))
    wanted = [svc.port for svc in SERVICES] + [4317, 4318] + ([16686] if jaeger else [])
    if not free_ports and not all(port_is_free(p) for p in wanted):
        console.print(f"[yellow]some of the ports 4317, 4318, 8000-8008{', 16686' if jaeger else ''} are in use: using free ports instead[/]")
        free_ports = True
    stack = Stack(workdir, mode="chainotel", free_ports=free_ports, slow=slow, error_rate=error_rate, jaeger=jaeger)
    failed = False
    with _stop_signals_interrupt():
        try:
            _run(console, stack, requests, concurrency, slow, keep_running)
        except KeyboardInterrupt as exc:
            console.print(f"\ninterrupted{f' ({exc})' if str(exc) else ''}")
        except (RuntimeError, FileNotFoundError, AnalyzerError) as exc:
            failed = True
            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        except BaseException:
            failed = True  # keep the logs that explain it
            raise
        finally:
            _ignore_stop_signals()
            try:
                with console.status("stopping everything the demo started…"):
                    stack.stop()
            finally:
                if data_dir is None and not keep_running and not failed:
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    console.print(f"data and logs kept in {workdir}", highlight=False)
            console.print("stopped.")


def _run(console, stack: Stack, requests: int, concurrency: int, slow: str, keep_running: bool) -> None:
    """The demo between start and stop: start the stack, drive traffic, print the report; with
    ``keep_running``, then wait (until Ctrl-C or a stop signal)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chainotel.cli.client import AnalyzerClient

    traffic = load_traffic()
    with console.status(f"starting {'Jaeger v2, the Collector, ' if stack.jaeger else ''}the analyzer (embedded ClickHouse) and five services…"):
        stack.start()
    console.print(f"analyzer {stack.analyzer_url}   data {stack.workdir / 'data'}   logs {stack.workdir}")
    if stack.jaeger:
        console.print(f"Jaeger   {stack.jaeger_url}   (services → Collector {stack.otlp_endpoint} → Jaeger + analyzer)")
    console.print("services " + "  ".join(f"{n} :{p}" for n, p in stack.ports.items()) + (f"   slowed: {slow}" if slow else ""))
    since = time.time() - 1
    counts = {"ok": 0, "failed": 0}
    with Progress(TextColumn("[bold]traffic"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("traffic", total=requests, detail="")

        def on_result(r) -> None:
            counts["ok" if r.ok else "failed"] += 1
            progress.update(task, advance=1, detail=f"ok {counts['ok']}  failed {counts['failed']}")

        results = asyncio.run(traffic.drive(stack.entry(), requests, concurrency, deadline_s=600, on_result=on_result))
    client = AnalyzerClient(stack.analyzer_url)
    try:
        with console.status("waiting for the last spans to be stored…"):
            sample = [r.instance_id for r in results if r.ok][-20:]
            wait_until_stored(client, sample)
        for part in chain_report(client, results, since):
            console.print(part)
    finally:
        client.close()
    ok = [r for r in results if r.ok]
    example = max(ok, key=lambda r: r.duration_ms).instance_id if ok else None  # the report's slowest request
    console.print(next_steps(stack.analyzer_url, example, since, stack.jaeger_url), soft_wrap=True)
    if keep_running:
        console.print("\n[bold]Stack left running[/] — Ctrl-C stops it.")
        while True:
            time.sleep(3600)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)
