"""BFT-SMaRt for the peer benchmark: build a checkout with javac against Debian's jars, write and
compile our closed-loop client, and run four stock ``ThroughputLatencyServer`` replicas in
durable mode (``rwd``: every replica writes and syncs each decided batch) with that client.

The client is ours (``CLIENT_SOURCE``): N threads, each with its own ``ServiceProxy``, each
sending a request with ``invokeOrdered`` and the next one once the reply is in.  A request is
framed the way ``ThroughputLatencyServer`` reads it (payload length, payload, signature length,
no signature).  The client records the send and reply times of every request that touches the
measured window and writes them to a CSV; the figures are computed here, with the same rules
as ``ibledger bench`` (``bench.stats``), so both systems are measured by one definition.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .stats import TxRecord

COMMIT = "681cec8cf83e1cabe55f45c6edd3d80bd8ad156d"
REPOSITORY = "https://github.com/bft-smart/library"
DEBIAN_JARS = Path("/usr/share/java")
# Debian package -> the jars of it the build and the processes need.  Debian's netty-all.jar
# is an empty aggregator, so the single netty jars are named.
DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "libnetty-java": (
        "netty-buffer.jar",
        "netty-codec.jar",
        "netty-common.jar",
        "netty-handler.jar",
        "netty-resolver.jar",
        "netty-transport.jar",
        "netty-transport-native-unix-common.jar",
        "netty-transport-native-epoll.jar",
    ),
    "libbcprov-java": ("bcprov.jar",),
    "libbcpkix-java": ("bcpkix.jar",),
    "libbcutil-java": ("bcutil.jar",),
    "libslf4j-java": ("slf4j-api.jar",),
    "liblogback-java": ("logback-classic.jar", "logback-core.jar"),
    "libcommons-codec-java": ("commons-codec.jar",),
}
JDK_PACKAGE = "openjdk-17-jdk-headless"
JDK_TOOLS = ("java", "javac", "jar")
# The checkout's own jars (not in Debian).
BUNDLED_JARS = ("lib/core-0.1.4.jar", "lib/BenchmarkExecutor.jar")
SERVER_CLASS = "bftsmart.demo.microbenchmarks.ThroughputLatencyServer"
CLIENT_CLASS = "IbledgerPeerClient"
REPLICAS = 4
# hosts.config as shipped: replica i listens on 11000 + 10 i (clients) and the next port (peers).
PORTS = tuple(p for i in range(REPLICAS) for p in (11000 + 10 * i, 11001 + 10 * i))
FIRST_CLIENT_ID = 1001
READY_LINE = "Ready to process operations"
READY_TIMEOUT_S = 120.0
DRAIN_S = 10.0
BUILD_DIR = "build/ibledger-peer"


class PeerError(Exception):
    """A failure the peer benchmark reports with a stable code and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def apt_command(packages: list[str]) -> str:
    return f"apt-get update && apt-get install -y {' '.join(packages)}"


def missing_packages(jar_dir: Path = DEBIAN_JARS, path: str | None = None) -> list[str]:
    """The Debian packages whose jars or tools are not installed, in apt-get order."""
    missing = []
    if any(shutil.which(tool, path=path) is None for tool in JDK_TOOLS):
        missing.append(JDK_PACKAGE)
    for package, jars in DEBIAN_PACKAGES.items():
        if any(not (jar_dir / jar).is_file() for jar in jars):
            missing.append(package)
    return missing


def check_packages(jar_dir: Path = DEBIAN_JARS) -> None:
    missing = missing_packages(jar_dir)
    if missing:
        raise PeerError(
            "PEER_PACKAGES_MISSING",
            f"BFT-SMaRt is built against Debian's jars; missing: {', '.join(missing)}. "
            f"Install them with: {apt_command(missing)}",
        )


def debian_classpath(jar_dir: Path = DEBIAN_JARS) -> list[Path]:
    return [jar_dir / jar for jars in DEBIAN_PACKAGES.values() for jar in jars]


def check_checkout(checkout: Path) -> str:
    """The checkout's commit, which must be ``COMMIT``."""
    fetch = f"git clone {REPOSITORY} DIR && git -C DIR checkout {COMMIT}"
    server = checkout / "src/main/java" / (SERVER_CLASS.replace(".", "/") + ".java")
    if not server.is_file():
        raise PeerError(
            "PEER_BFTSMART_CHECKOUT",
            f"{checkout} is not a BFT-SMaRt checkout (no {server.name}); get one with: {fetch}",
        )
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise PeerError(
            "PEER_BFTSMART_CHECKOUT",
            f"{checkout} is not a git checkout, so its commit cannot be told; get one with: "
            f"{fetch}",
        ) from None
    if head != COMMIT:
        raise PeerError(
            "PEER_BFTSMART_COMMIT",
            f"{checkout} is at {head}; the benchmark is defined on {COMMIT}: "
            f"git -C {checkout} checkout {COMMIT}",
        )
    return head


# --- the client ---

CLIENT_SOURCE = """\
import bftsmart.tom.ServiceProxy;

import java.io.BufferedWriter;
import java.io.FileWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Closed-loop load for BFT-SMaRt's ThroughputLatencyServer, written for ibledger's peer
 * benchmark.  usage: THREADS WARMUP_S MEASURE_S PAYLOAD_BYTES FIRST_CLIENT_ID CONFIG_DIR OUT_CSV
 *
 * Every thread owns one ServiceProxy (one BFT-SMaRt client id) and sends one ordered request at
 * a time.  Times are System.nanoTime(), written in seconds from the start of the measured
 * window; a request without a reply (the proxy timed out, or the replies did not match) has an
 * empty reply time.
 * Requests answered before the window opened are not written.
 */
public final class IbledgerPeerClient {
    private static final class Load implements Runnable {
        private final ServiceProxy proxy;
        private final byte[] command;
        private final long begin;
        private final long windowStart;
        private final long end;
        private final AtomicLong failures;
        final List<long[]> sends = new ArrayList<>();

        Load(ServiceProxy proxy, byte[] command, long begin, long windowStart, long end,
             AtomicLong failures) {
            this.proxy = proxy;
            this.command = command;
            this.begin = begin;
            this.windowStart = windowStart;
            this.end = end;
            this.failures = failures;
        }

        @Override
        public void run() {
            long wait = begin - System.nanoTime();
            if (wait > 0) {
                try {
                    Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                } catch (InterruptedException e) {
                    return;
                }
            }
            while (true) {
                long sent = System.nanoTime();
                if (sent >= end) {
                    return;
                }
                byte[] reply;
                try {
                    reply = proxy.invokeOrdered(command);
                } catch (RuntimeException e) {
                    reply = null;  // replies that did not match: an unanswered request
                }
                long answered = System.nanoTime();
                if (reply == null) {
                    failures.incrementAndGet();
                }
                if (answered >= windowStart || reply == null) {
                    sends.add(new long[] {sent, reply == null ? Long.MIN_VALUE : answered});
                }
            }
        }
    }

    private static byte[] command(int payloadBytes) {
        byte[] payload = new byte[payloadBytes];
        for (int i = 0; i < payloadBytes; i++) {
            payload[i] = (byte) i;
        }
        // ThroughputLatencyServer reads: int length, payload, int signature length, signature.
        ByteBuffer framed = ByteBuffer.allocate(payloadBytes + 2 * Integer.BYTES);
        framed.putInt(payloadBytes);
        framed.put(payload);
        framed.putInt(0);
        return framed.array();
    }

    private static String seconds(long nanos) {
        return String.format(Locale.ROOT, "%.9f", nanos / 1e9);
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length != 7) {
            System.err.println("usage: IbledgerPeerClient THREADS WARMUP_S MEASURE_S "
                    + "PAYLOAD_BYTES FIRST_CLIENT_ID CONFIG_DIR OUT_CSV");
            System.exit(2);
        }
        int threads = Integer.parseInt(args[0]);
        double warmup = Double.parseDouble(args[1]);
        double measure = Double.parseDouble(args[2]);
        int payloadBytes = Integer.parseInt(args[3]);
        int firstId = Integer.parseInt(args[4]);
        String configDir = args[5];
        String out = args[6];
        if (threads < 1 || warmup < 0 || measure <= 0 || payloadBytes < 0) {
            System.err.println("THREADS >= 1, WARMUP_S >= 0, MEASURE_S > 0, PAYLOAD_BYTES >= 0");
            System.exit(2);
        }
        byte[] command = command(payloadBytes);
        ServiceProxy[] proxies = new ServiceProxy[threads];
        for (int i = 0; i < threads; i++) {
            proxies[i] = new ServiceProxy(firstId + i, configDir);
        }
        // Every proxy is connected before the clock starts.
        long begin = System.nanoTime() + 500_000_000L;
        long windowStart = begin + (long) (warmup * 1e9);
        long end = windowStart + (long) (measure * 1e9);
        AtomicLong failures = new AtomicLong();
        Load[] loads = new Load[threads];
        Thread[] workers = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            loads[i] = new Load(proxies[i], command, begin, windowStart, end, failures);
            workers[i] = new Thread(loads[i], "load-" + i);
            workers[i].setDaemon(true);
            workers[i].start();
        }
        System.out.println("CONNECTED " + threads);
        System.out.flush();
        long drainUntil = end + (long) (DRAIN_S * 1e9);
        int late = 0;
        for (Thread worker : workers) {
            long left = (drainUntil - System.nanoTime()) / 1_000_000L;
            worker.join(Math.max(1L, left));
            if (worker.isAlive()) {
                late++;
            }
        }
        try (BufferedWriter csv = new BufferedWriter(new FileWriter(out))) {
            csv.write("sent_s,answered_s\\n");
            for (int i = 0; i < threads; i++) {
                if (workers[i].isAlive()) {
                    continue;  // still waiting on a reply: its list is not safe to read
                }
                for (long[] send : loads[i].sends) {
                    String answered = send[1] == Long.MIN_VALUE
                            ? "" : seconds(send[1] - windowStart);
                    csv.write(seconds(send[0] - windowStart) + "," + answered + "\\n");
                }
            }
        }
        System.out.println("DONE threads=" + threads + " failures=" + failures.get()
                + " late_threads=" + late);
        System.out.flush();
        System.exit(late == 0 ? 0 : 3);
    }
}
""".replace("DRAIN_S", repr(DRAIN_S))


@dataclass(frozen=True, slots=True)
class Build:
    """A built checkout: the classpath of the replicas and the client, and where config lives."""

    checkout: Path
    commit: str
    classpath: tuple[Path, ...]
    client_classes: Path

    def client_classpath(self) -> str:
        return os.pathsep.join(str(p) for p in (self.client_classes, *self.classpath))


def _fingerprint(commit: str) -> str:
    return hashlib.sha256(f"{commit}\n{CLIENT_SOURCE}".encode()).hexdigest()


def build(checkout: Path, log: Path, jar_dir: Path = DEBIAN_JARS) -> Build:
    """Compile the checkout and our client into ``checkout/build/ibledger-peer`` (outside any
    source tree of ours); a build of the same commit and client source is reused."""
    check_packages(jar_dir)
    commit = check_checkout(checkout)
    out = checkout / BUILD_DIR
    server_jar = out / "BFT-SMaRt.jar"
    client_classes = out / "client"
    stamp = out / "stamp.json"
    debian = debian_classpath(jar_dir)
    bundled = [checkout / jar for jar in BUNDLED_JARS]
    missing = [str(j) for j in bundled if not j.is_file()]
    if missing:
        raise PeerError("PEER_BFTSMART_CHECKOUT", f"the checkout lacks {', '.join(missing)}")
    classpath = (server_jar, *bundled, *debian)
    result = Build(checkout, commit, classpath, client_classes)
    fingerprint = _fingerprint(commit)
    with contextlib.suppress(OSError, ValueError, KeyError):
        if json.loads(stamp.read_text())["fingerprint"] == fingerprint and server_jar.is_file():
            return result
    shutil.rmtree(out, ignore_errors=True)
    (out / "classes").mkdir(parents=True)
    client_classes.mkdir()
    sources = sorted(str(p) for p in (checkout / "src/main/java").rglob("*.java"))
    (out / "sources.txt").write_text("\n".join(sources) + "\n")
    compile_cp = os.pathsep.join(str(p) for p in (*bundled, *debian))
    client_source = out / f"{CLIENT_CLASS}.java"
    client_source.write_text(CLIENT_SOURCE)
    steps = [
        [
            "javac",
            "-nowarn",
            "-encoding",
            "UTF-8",
            "--release",
            "8",
            "-cp",
            compile_cp,
            "-d",
            str(out / "classes"),
            f"@{out / 'sources.txt'}",
        ],
        ["jar", "cf", str(server_jar), "-C", str(out / "classes"), "."],
        [
            "javac",
            "-nowarn",
            "--release",
            "8",
            "-cp",
            os.pathsep.join(str(p) for p in classpath),
            "-d",
            str(client_classes),
            str(client_source),
        ],
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        for step in steps:
            handle.write(f"$ {' '.join(step)}\n")
            handle.flush()
            done = subprocess.run(step, stdout=handle, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise PeerError(
                    "PEER_BUILD_FAILED", f"{step[0]} exited with {done.returncode}; see {log}"
                )
    stamp.write_text(json.dumps({"commit": commit, "fingerprint": fingerprint}, indent=2))
    return result


# --- a run ---


@dataclass(frozen=True, slots=True)
class ClientReport:
    records: list[TxRecord]
    failures: int
    late_threads: int


def parse_client_csv(text: str) -> list[TxRecord]:
    """The client's CSV as records on the window's clock (seconds from its start); an empty
    reply time is a request that was never answered."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "sent_s,answered_s":
        raise ValueError("the client CSV has no 'sent_s,answered_s' header")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        sent_text, sep, answered_text = line.partition(",")
        try:
            if not sep:
                raise ValueError
            sent = float(sent_text)
            answered = float(answered_text) if answered_text.strip() else math.nan
        except ValueError:
            raise ValueError(f"client CSV line {number} is not 'sent,answered': {line!r}") from None
        if not math.isfinite(sent) or math.isinf(answered) or answered < sent:
            raise ValueError(f"client CSV line {number} has impossible times: {line!r}")
        records.append(TxRecord(sent, sent, answered))
    return records


def parse_done_line(text: str) -> tuple[int, int]:
    """``failures`` and ``late_threads`` from the client's closing line."""
    for line in reversed(text.splitlines()):
        if line.startswith("DONE "):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            try:
                return int(fields["failures"]), int(fields["late_threads"])
            except (KeyError, ValueError):
                break
    raise ValueError("the client printed no 'DONE ... failures=N late_threads=N' line")


def ports_in_use(ports: tuple[int, ...] = PORTS) -> list[int]:
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextlib.contextmanager
def replicas(built: Build, run_dir: Path) -> Iterator[Path]:
    """Four durable replicas in ``run_dir`` (a fresh copy of the shipped config, so no view
    of an earlier run is left); yields the config directory once all four are ready."""
    busy = ports_in_use()
    if busy:
        raise PeerError(
            "PEER_PORTS_BUSY",
            f"BFT-SMaRt's ports {', '.join(map(str, busy))} are taken (another run?)",
        )
    config = run_dir / "config"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(built.checkout / "config", config)
    (config / "currentView").unlink(missing_ok=True)
    tmp = run_dir / "tmp"  # the durable log files of ThroughputLatencyServer land here
    tmp.mkdir()
    classpath = os.pathsep.join(str(p) for p in built.classpath)
    processes: list[subprocess.Popen[bytes]] = []
    logs = [run_dir / f"replica{i}.log" for i in range(REPLICAS)]
    try:
        for i, log in enumerate(logs):
            with log.open("wb") as handle:
                processes.append(
                    subprocess.Popen(
                        [
                            "java",
                            "-Xms256m",
                            "-Xmx1g",
                            *java_options(tmp),
                            "-cp",
                            classpath,
                            SERVER_CLASS,
                            str(i),
                            "10000",  # measurement interval (its own log lines)
                            "0",  # reply bytes
                            "0",  # state bytes
                            "false",  # no context
                            "nosig",
                            "rwd",  # write and sync each decided batch
                        ],
                        cwd=run_dir,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(READY_LINE in log.read_text(errors="replace") for log in logs):
            for i, process in enumerate(processes):
                if process.poll() is not None:
                    raise PeerError(
                        "PEER_BFTSMART_FAILED",
                        f"replica {i} exited with {process.returncode}; see {logs[i]}",
                    )
            if time.monotonic() > deadline:
                raise PeerError(
                    "PEER_BFTSMART_FAILED",
                    f"the replicas were not ready within {READY_TIMEOUT_S:g} s; see {run_dir}",
                )
            time.sleep(0.5)
        yield config
    finally:
        _stop(processes)
        shutil.rmtree(tmp, ignore_errors=True)


def java_options(tmp: Path) -> list[str]:
    return [
        "-Djava.security.properties=config/java.security",
        "-Dlogback.configurationFile=config/logback.xml",
        f"-Djava.io.tmpdir={tmp}",
    ]


def run_client(
    built: Build,
    run_dir: Path,
    config: Path,
    threads: int,
    warmup: float,
    measure: float,
    payload_bytes: int,
) -> ClientReport:
    csv_path = run_dir / "client.csv"
    log = run_dir / "client.log"
    command = [
        "java",
        "-Xms256m",
        "-Xmx1g",
        *java_options(run_dir / "tmp"),
        "-cp",
        built.client_classpath(),
        CLIENT_CLASS,
        str(threads),
        f"{warmup:g}",
        f"{measure:g}",
        str(payload_bytes),
        str(FIRST_CLIENT_ID),
        str(config),
        str(csv_path),
    ]
    limit = warmup + measure + DRAIN_S + READY_TIMEOUT_S
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, cwd=run_dir, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _stop([process])
            raise PeerError(
                "PEER_BFTSMART_FAILED", f"the client did not finish in {limit:g} s; see {log}"
            ) from None
    text = log.read_text(errors="replace")
    try:
        failures, late = parse_done_line(text)
        records = parse_client_csv(csv_path.read_text())
    except (OSError, ValueError) as exc:
        raise PeerError(
            "PEER_BFTSMART_FAILED", f"the client exited with {code}: {exc}; see {log}"
        ) from None
    return ClientReport(records, failures, late)


def run(
    built: Build, run_dir: Path, threads: int, warmup: float, measure: float, payload_bytes: int
) -> ClientReport:
    """One closed-loop run on four fresh durable replicas."""
    with replicas(built, run_dir) as config:
        return run_client(built, run_dir, config, threads, warmup, measure, payload_bytes)
