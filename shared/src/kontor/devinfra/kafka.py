"""Apache Kafka in KRaft mode (one node: broker and controller), from the jars that
`deploy/kafka/pom.xml` fetches from Maven Central into `deploy/kafka/libs/`."""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kontor.devinfra import InfraError, local_dir, port_open, project_root, wait_for_port

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
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
    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    heap: str = "768m"
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

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

    def start(self, timeout_s: float = 90) -> float | None:
        """Start the broker unless one listens already; returns the start-up seconds, or None when reused."""
        started = time.monotonic()
        if port_open(self.host, self.port):
            return None
        if port_open(self.host, self.controller_port):
            raise InfraError(f"port {self.controller_port} (Kafka controller) is taken by another program")
        java = self._java()
        self._check_jars()
        base = local_dir("kafka")
        data = base / "data"
        props = base / "server.properties"
        props.write_text(SERVER_PROPERTIES.format(host=self.host, port=self.port,
                                                  controller_port=self.controller_port, data=data))
        (base / "log4j.properties").write_text(LOG4J)
        classpath = f"{self.libs}/*"
        jvm = [java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
               f"-Dlog4j.configuration=file:{base / 'log4j.properties'}", "-cp", classpath]
        if not (data / "meta.properties").exists():
            data.mkdir(parents=True, exist_ok=True)
            cluster_id = _cluster_id()
            subprocess.run([*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)],
                           check=True, capture_output=True)
        log = base / "kafka.log"
        self.process = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], stdout=log.open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.host, self.port, timeout_s, "Kafka", self.process, log)
        return time.monotonic() - started

    def stop(self, timeout_s: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes, URL-safe base64 without padding. One in 64 starts with
    # '-', hence `--cluster-id=` above: as a separate argument it would be read as an option.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
