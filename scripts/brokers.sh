#!/usr/bin/env bash
# Makes sure the services the tests use are up on their standard loopback
# ports: NATS with JetStream (4222), Mosquitto (1883) and Redis (6379, the
# key-value conformance suite's second backend). A machine
# that runs them already is left alone; otherwise they are installed if
# missing (Debian packages) and started for this session.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  for _ in $(seq 1 50); do
    listening "$1" && return 0
    sleep 0.2
  done
  echo "brokers.sh: nothing listens on 127.0.0.1:$1 after starting $2" >&2
  return 1
}

install_missing() {
  command -v "$1" >/dev/null && return 0
  echo "brokers.sh: installing $2"
  apt-get install -y -q "$2" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}

if ! listening 4222; then
  install_missing nats-server nats-server
  store="${TMPDIR:-/tmp}/stratus-nats"
  mkdir -p "$store"
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd "$store" >"$store.log" 2>&1 &
  wait_for 4222 nats-server
  echo "brokers.sh: started nats-server (JetStream) on 127.0.0.1:4222"
fi

if ! listening 1883; then
  install_missing mosquitto mosquitto
  conf="${TMPDIR:-/tmp}/stratus-mosquitto.conf"
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' >"$conf"
  mosquitto -c "$conf" -d
  wait_for 1883 mosquitto
  echo "brokers.sh: started mosquitto on 127.0.0.1:1883"
fi

if ! listening 6379; then
  install_missing redis-server redis-server
  redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes >/dev/null
  wait_for 6379 redis-server
  echo "brokers.sh: started redis-server on 127.0.0.1:6379"
fi
