#!/bin/sh
# as Kafka's own script: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT
exec java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j.configuration=file:/dev/null \
  -cp '/opt/kafka/libs/*' kafka.admin.BrokerApiVersionsCommand "$@"
