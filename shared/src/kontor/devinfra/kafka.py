"""Apache Kafka in KRaft mode, from the jars that `deploy/kafka/pom.xml` fetches from Maven
Central into `deploy/kafka/libs/`: one node (broker and controller), or a cluster of several
such nodes on this machine (`nodes=3`: three brokers that are also the controller quorum, topics
replicated 3 times with `min.insync.replicas` 2), as `make up KAFKA_NODES=3` runs it."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kontor.devinfra import InfraError, local_dir, port_open, project_root, wait_for_port

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=3
default.replication.factor={replication}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
"""

LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
"""


@dataclass
class LocalKafka:
    """`nodes` Kafka nodes on this machine: node i (0-based) listens on `port + 2i` (clients) and
    `port + 2i + 1` (controller), and keeps its data in `.local/<name>/` (node 0) or
    `.local/<name>/node-<i>/`."""

    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int | None = None  # node 0's; port + 1 by default
    heap: str = "768m"
    nodes: int = 1
    name: str = "kafka"
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise InfraError("a Kafka cluster has at least one node")
        if self.controller_port is None:
            self.controller_port = self.port + 1

    def broker_port(self, node: int) -> int:
        return self.port + 2 * node

    def _controller(self, node: int) -> int:
        first = self.port + 1 if self.controller_port is None else self.controller_port
        return first + 2 * node

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{self.broker_port(n)}" for n in range(self.nodes))

    @property
    def replication(self) -> int:
        return min(3, self.nodes)

    @property
    def min_insync_replicas(self) -> int:
        return max(1, self.replication - 1)

    @property
    def process(self) -> subprocess.Popen | None:  # the single node's (kept for callers of one node)
        return self.processes.get(0)

    @property
    def libs(self) -> Path:
        return project_root() / "deploy" / "kafka" / "libs"

    def _java(self) -> str:
        java = shutil.which("java")
        if not java:
            raise InfraError("Java is missing: Kafka needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)")
        return java

    def _check_jars(self) -> None:
        if not self.libs.is_dir() or not any(self.libs.glob("kafka_2.13-*.jar")):
            raise InfraError(
                f"Kafka jars are missing in {self.libs}: run `make setup` "
                "(it runs `mvn -f deploy/kafka/pom.xml package`; Maven is needed: apt-get install maven)"
            )

    def _dir(self, node: int) -> Path:
        return local_dir(self.name) if node == 0 else local_dir(self.name, f"node-{node}")

    def start(self, timeout_s: float = 90) -> float | None:
        """Start the nodes unless they listen already; returns the start-up seconds, or None when
        every node was already running (reused)."""
        started = time.monotonic()
        if all(port_open(self.host, self.broker_port(n)) for n in range(self.nodes)):
            return None
        if self.nodes == 1 or not (self._dir(0) / "data" / "meta.properties").exists():
            cluster_id = _cluster_id()
        else:
            cluster_id = None  # formatted before: every node keeps its id
        for n in range(self.nodes):
            if not port_open(self.host, self.broker_port(n)):
                self.start_node(n, cluster_id=cluster_id, wait=False)
        for n in range(self.nodes):
            log = self._dir(n) / "kafka.log"
            wait_for_port(self.host, self.broker_port(n), timeout_s, f"Kafka node {n}", self.processes.get(n), log)
        return time.monotonic() - started

    def start_node(self, node: int, *, cluster_id: str | None = None, wait: bool = True,
                   timeout_s: float = 90) -> None:
        """Start one node (again): tests kill one and bring it back."""
        if port_open(self.host, self._controller(node)):
            raise InfraError(f"port {self._controller(node)} (Kafka controller) is taken by another program")
        java = self._java()
        self._check_jars()
        base = self._dir(node)
        data = base / "data"
        props = base / "server.properties"
        voters = ",".join(f"{n + 1}@{self.host}:{self._controller(n)}" for n in range(self.nodes))
        props.write_text(SERVER_PROPERTIES.format(
            node_id=node + 1, voters=voters, host=self.host, port=self.broker_port(node),
            controller_port=self._controller(node), data=data, replication=self.replication,
            min_isr=self.min_insync_replicas))
        (base / "log4j.properties").write_text(LOG4J)
        jvm = [java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
               f"-Dlog4j.configuration=file:{base / 'log4j.properties'}", "-cp", f"{self.libs}/*"]
        if not (data / "meta.properties").exists():
            if cluster_id is None:
                cluster_id = _read_cluster_id(self._dir(0) / "data") or _cluster_id()
            data.mkdir(parents=True, exist_ok=True)
            subprocess.run([*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)],  # noqa: S603 - argv of our own, the Kafka JVM
                           check=True, capture_output=True)
        log = base / "kafka.log"
        self.processes[node] = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], stdout=log.open("ab"),  # noqa: S603 - argv of our own, the Kafka JVM
                                                stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            wait_for_port(self.host, self.broker_port(node), timeout_s, f"Kafka node {node}", self.processes[node],
                          log)

    def kill_node(self, node: int) -> None:
        """SIGKILL one node (a broker crash)."""
        proc = self.processes.pop(node, None)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self, timeout_s: float = 30) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()


def _read_cluster_id(data: Path) -> str | None:
    meta = data / "meta.properties"
    if not meta.exists():
        return None
    for line in meta.read_text().splitlines():
        if line.startswith("cluster.id="):
            return line.split("=", 1)[1].strip()
    return None


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes, URL-safe base64 without padding. One in 64 starts with
    # '-', hence `--cluster-id=` above: as a separate argument it would be read as an option.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
