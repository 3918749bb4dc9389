#!/usr/bin/env bash
# Ensure the message brokers the Ferry tests need are listening on loopback.
#
#   rabbitmq   AMQP 127.0.0.1:5672 (guest/guest), STOMP :61613, Web-STOMP :15674 (/ws),
#              MQTT (rabbitmq_mqtt, 3.1.1) :1884 -- not 1883, which is Mosquitto's
#   mosquitto  MQTT 127.0.0.1:1883
#   redis      127.0.0.1:6379
#
# Idempotent and fast when everything is up (only TCP port probes run). Brokers
# that are installed but stopped are started; missing ones are installed with
# apt-get when running as root. Running brokers are never restarted, except a
# single RabbitMQ restart when `web_stomp.ws_frame = binary` or
# `mqtt.listeners.tcp.default = 1884` had to be added to /etc/rabbitmq/rabbitmq.conf
# and the running node has not picked it up. (Enabling rabbitmq_mqtt on a node
# that has not read the 1884 line would make it grab 1883 from Mosquitto, so the
# MQTT plugin is only ever enabled offline, before a boot that reads the file.)
#
# Environment:
#   FERRY_BROKERS=none                 do nothing
#   FERRY_BROKERS=rabbitmq,redis       only these (default: all)
#                                      names: rabbitmq, mosquitto (or mqtt), redis
#   FERRY_BROKERS_TIMEOUT=60           seconds to wait for a port to listen
set -euo pipefail

umask 022
# Daemons and their tools live in /usr/sbin, which is not on a Debian user's PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HOST=127.0.0.1
WAIT_SECS="${FERRY_BROKERS_TIMEOUT:-60}"
RABBITMQ_CONF=/etc/rabbitmq/rabbitmq.conf
WS_FRAME_LINE='web_stomp.ws_frame = binary'
MQTT_PORT=1884
MQTT_LINE="mqtt.listeners.tcp.default = $MQTT_PORT"
RABBITMQ_PLUGINS=(rabbitmq_stomp rabbitmq_web_stomp rabbitmq_mqtt)

say() { printf 'brokers: %s\n' "$*"; }
note() { printf 'brokers: %s\n' "$*" >&2; }
die() {
  printf 'brokers: ERROR: %s\n' "$*" >&2
  exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }
have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# True if something accepts TCP connections on $HOST:$1.
port_open() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
  fi
}

# wait_port <broker> <port> <what> [secs]: poll until the port listens or the deadline passes.
wait_port() {
  local broker=$1 port=$2 what=$3 secs=${4:-$WAIT_SECS}
  local deadline=$((SECONDS + secs))
  until port_open "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$broker: $what did not start listening on $HOST:$port within ${secs}s"
    fi
    sleep 0.25
  done
}

# wait_port_closed <broker> <port>: poll until nothing listens on the port.
wait_port_closed() {
  local broker=$1 port=$2 deadline=$((SECONDS + WAIT_SECS))
  while port_open "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$broker: still listening on $HOST:$port ${WAIT_SECS}s after being stopped"
    fi
    sleep 0.25
  done
}

# run <broker> <description> <cmd...>: run quietly; on failure show its output and die.
# Output goes to a file, not a pipe: daemons that keep inherited fds open must not block us.
RUN_LOG=""
run() {
  local broker=$1 desc=$2
  shift 2
  if [ -z "$RUN_LOG" ]; then
    RUN_LOG=$(mktemp "${TMPDIR:-/tmp}/ferry-brokers.XXXXXX")
    trap 'rm -f "$RUN_LOG"' EXIT
  fi
  if ! "$@" </dev/null >"$RUN_LOG" 2>&1; then
    tail -n 20 "$RUN_LOG" >&2
    die "$broker: $desc failed ($*)"
  fi
}

need_root() { is_root || die "$1: $2 (needs root; run 'sudo bash scripts/brokers.sh', or exclude it via FERRY_BROKERS)"; }

# ---------------------------------------------------------------------------
# Which brokers?

selection="${FERRY_BROKERS:-all}"
selection="$(printf '%s' "$selection" | tr 'A-Z,' 'a-z ')"
want_rabbitmq=0 want_mosquitto=0 want_redis=0
for name in $selection; do
  case "$name" in
    none | off | skip | 0)
      say "skipped (FERRY_BROKERS=${FERRY_BROKERS})"
      exit 0
      ;;
    all) want_rabbitmq=1 want_mosquitto=1 want_redis=1 ;;
    rabbitmq | rabbit | amqp | stomp) want_rabbitmq=1 ;;
    mosquitto | mqtt) want_mosquitto=1 ;;
    redis) want_redis=1 ;;
    *)
      printf 'brokers: ERROR: unknown broker %q in FERRY_BROKERS (use rabbitmq, mosquitto, redis, all or none)\n' "$name" >&2
      exit 2
      ;;
  esac
done
if [ $((want_rabbitmq + want_mosquitto + want_redis)) -eq 0 ]; then
  say "skipped (FERRY_BROKERS is empty)"
  exit 0
fi

# ---------------------------------------------------------------------------
# Install whatever is missing, but only for brokers that are not already up.

missing=()
if [ "$want_rabbitmq" = 1 ] && ! { port_open 5672 && port_open 61613 && port_open 15674 && port_open "$MQTT_PORT"; }; then
  command -v rabbitmq-server >/dev/null 2>&1 && command -v rabbitmq-plugins >/dev/null 2>&1 ||
    missing+=(rabbitmq-server)
fi
if [ "$want_mosquitto" = 1 ] && ! port_open 1883; then
  command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
fi
if [ "$want_redis" = 1 ] && ! port_open 6379; then
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  need_root "${missing[*]}" "not installed"
  note "installing ${missing[*]} with apt-get ..."
  run apt "apt-get update" apt-get update
  run apt "installing ${missing[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# ---------------------------------------------------------------------------
# RabbitMQ

# Make sure rabbitmq.conf sets web_stomp.ws_frame = binary, keeping every other
# line. Returns 0 if the file was changed, 1 if it was already right.
rabbitmq_ensure_ws_frame() {
  if [ -f "$RABBITMQ_CONF" ] &&
    grep -Eq '^[[:space:]]*web_stomp\.ws_frame[[:space:]]*=[[:space:]]*binary[[:space:]]*$' "$RABBITMQ_CONF"; then
    return 1
  fi
  need_root rabbitmq "$RABBITMQ_CONF lacks '$WS_FRAME_LINE'"
  mkdir -p "$(dirname "$RABBITMQ_CONF")"
  if [ -f "$RABBITMQ_CONF" ] && grep -Eq '^[[:space:]]*web_stomp\.ws_frame[[:space:]]*=' "$RABBITMQ_CONF"; then
    # A conflicting value (e.g. text): replace it in place.
    sed -i -E "s/^[[:space:]]*web_stomp\.ws_frame[[:space:]]*=.*/$WS_FRAME_LINE/" "$RABBITMQ_CONF"
  else
    if [ -s "$RABBITMQ_CONF" ] && [ -n "$(tail -c 1 "$RABBITMQ_CONF")" ]; then
      printf '\n' >>"$RABBITMQ_CONF"
    fi
    printf '%s\n' "$WS_FRAME_LINE" >>"$RABBITMQ_CONF"
  fi
  note "rabbitmq: set '$WS_FRAME_LINE' in $RABBITMQ_CONF"
  return 0
}

# Make sure rabbitmq.conf moves the MQTT plugin's listener to $MQTT_PORT, keeping
# every other line. Returns 0 if the file was changed, 1 if it was already right.
rabbitmq_ensure_mqtt_port() {
  if [ -f "$RABBITMQ_CONF" ] &&
    grep -Eq "^[[:space:]]*mqtt\.listeners\.tcp\.default[[:space:]]*=[[:space:]]*$MQTT_PORT[[:space:]]*\$" "$RABBITMQ_CONF"; then
    return 1
  fi
  need_root rabbitmq "$RABBITMQ_CONF lacks '$MQTT_LINE'"
  mkdir -p "$(dirname "$RABBITMQ_CONF")"
  if [ -f "$RABBITMQ_CONF" ] && grep -Eq '^[[:space:]]*mqtt\.listeners\.tcp\.default[[:space:]]*=' "$RABBITMQ_CONF"; then
    sed -i -E "s/^[[:space:]]*mqtt\.listeners\.tcp\.default[[:space:]]*=.*/$MQTT_LINE/" "$RABBITMQ_CONF"
  else
    if [ -s "$RABBITMQ_CONF" ] && [ -n "$(tail -c 1 "$RABBITMQ_CONF")" ]; then
      printf '\n' >>"$RABBITMQ_CONF"
    fi
    printf '%s\n' "$MQTT_LINE" >>"$RABBITMQ_CONF"
  fi
  note "rabbitmq: set '$MQTT_LINE' in $RABBITMQ_CONF"
  return 0
}

rabbitmq_start_node() {
  need_root rabbitmq "not running on $HOST:5672"
  note "rabbitmq: starting node ..."
  if have_systemd; then
    run rabbitmq "systemctl start rabbitmq-server" timeout 180 systemctl start rabbitmq-server
  else
    run rabbitmq "rabbitmq-server -detached" rabbitmq-server -detached
  fi
  # await_startup fails at once if the node has not registered yet, so first wait
  # (bounded) for the AMQP listener, then let await_startup confirm a full boot.
  wait_port rabbitmq 5672 "AMQP (node boot)" $((WAIT_SECS > 120 ? WAIT_SECS : 120))
  run rabbitmq "waiting for node startup" timeout 120 rabbitmqctl await_startup
}

rabbitmq_stop_node() {
  note "rabbitmq: restarting node to apply $RABBITMQ_CONF ..."
  if have_systemd; then
    run rabbitmq "systemctl stop rabbitmq-server" timeout 180 systemctl stop rabbitmq-server
  else
    # `shutdown` is `stop` that also waits for the Erlang VM to exit.
    run rabbitmq "rabbitmqctl shutdown" timeout 120 rabbitmqctl shutdown
  fi
  wait_port_closed rabbitmq 5672
}

# Seconds since the RabbitMQ node (the oldest beam.smp of user rabbitmq) started; empty if unknown.
rabbitmq_node_age() {
  ps -u rabbitmq -o etimes=,comm= 2>/dev/null | awk '$2 == "beam.smp" && $1 > max { max = $1 } END { if (max != "") print max }'
}

# True if rabbitmq.conf was modified after the running node booted.
rabbitmq_conf_newer_than_node() {
  local age mtime
  [ -f "$RABBITMQ_CONF" ] || return 1
  age=$(rabbitmq_node_age || true)
  [ -n "$age" ] || return 1
  mtime=$(stat -c %Y "$RABBITMQ_CONF")
  [ "$mtime" -gt $(($(date +%s) - age)) ]
}

ensure_rabbitmq() {
  local actions=() conf_changed=0 frame
  if rabbitmq_ensure_ws_frame; then conf_changed=1; fi
  if rabbitmq_ensure_mqtt_port; then conf_changed=1; fi
  if ! port_open 5672; then
    # Node down: config is fixed and plugins are enabled offline, so one boot picks up everything.
    need_root rabbitmq "not running on $HOST:5672"
    run rabbitmq "enabling plugins (offline)" rabbitmq-plugins enable --offline "${RABBITMQ_PLUGINS[@]}"
    rabbitmq_start_node
    actions+=(started)
  elif [ "$conf_changed" = 1 ] || rabbitmq_conf_newer_than_node || ! port_open "$MQTT_PORT"; then
    if ! port_open "$MQTT_PORT" && { [ "$conf_changed" = 1 ] || rabbitmq_conf_newer_than_node; }; then
      # The running node has not read the MQTT listener line: enabling the plugin
      # now would bind 1883. Enable offline and restart the node once.
      need_root rabbitmq "MQTT plugin not listening on $MQTT_PORT"
      rabbitmq_stop_node
      run rabbitmq "enabling plugins (offline)" rabbitmq-plugins enable --offline "${RABBITMQ_PLUGINS[@]}"
      rabbitmq_start_node
      actions+=("restarted for mqtt listener")
    else
      if ! port_open 61613 || ! port_open 15674 || ! port_open "$MQTT_PORT"; then
        # The node already read the config: enabling works on the running node.
        need_root rabbitmq "plugins not listening (61613/15674/$MQTT_PORT)"
        note "rabbitmq: enabling ${RABBITMQ_PLUGINS[*]} ..."
        run rabbitmq "rabbitmq-plugins enable" timeout 180 rabbitmq-plugins enable "${RABBITMQ_PLUGINS[@]}"
        actions+=("enabled plugins")
      fi
      # A running node never re-reads rabbitmq.conf. If the file changed since the
      # node booted, ask the node what ws_frame it uses and restart once if needed.
      if ! is_root; then
        note "rabbitmq: WARNING: cannot verify web_stomp.ws_frame on the running node (not root)"
      elif ! frame=$(timeout 60 rabbitmqctl eval 'application:get_env(rabbitmq_web_stomp, ws_frame).' 2>/dev/null); then
        note "rabbitmq: WARNING: could not query web_stomp.ws_frame from the running node"
      elif [ "$frame" != "{ok,binary}" ]; then
        note "rabbitmq: node has web_stomp.ws_frame=${frame:-?}, needs binary"
        rabbitmq_stop_node
        rabbitmq_start_node
        actions+=("restarted for ws_frame")
      fi
    fi
  elif ! port_open 61613 || ! port_open 15674; then
    need_root rabbitmq "STOMP plugins not listening (61613/15674)"
    note "rabbitmq: enabling ${RABBITMQ_PLUGINS[*]} ..."
    run rabbitmq "rabbitmq-plugins enable" timeout 180 rabbitmq-plugins enable "${RABBITMQ_PLUGINS[@]}"
    actions+=("enabled plugins")
  fi
  wait_port rabbitmq 5672 "AMQP"
  wait_port rabbitmq 61613 "STOMP (rabbitmq_stomp)"
  wait_port rabbitmq 15674 "Web-STOMP (rabbitmq_web_stomp)"
  wait_port rabbitmq "$MQTT_PORT" "MQTT (rabbitmq_mqtt)"
  local suffix=""
  if [ "${#actions[@]}" -gt 0 ]; then suffix=" [$(IFS=,; printf '%s' "${actions[*]}" | sed 's/,/, /g')]"; fi
  say "rabbitmq up (amqp 5672, stomp 61613, web-stomp 15674/ws, mqtt $MQTT_PORT)$suffix"
}

# ---------------------------------------------------------------------------
# Mosquitto

ensure_mosquitto() {
  local suffix=""
  if ! port_open 1883; then
    need_root mosquitto "not running on $HOST:1883"
    note "mosquitto: starting ..."
    if have_systemd; then
      run mosquitto "systemctl start mosquitto" timeout 60 systemctl start mosquitto
    else
      mkdir -p /run/mosquitto
      chown mosquitto /run/mosquitto
      run mosquitto "mosquitto -d" mosquitto -d -c /etc/mosquitto/mosquitto.conf
    fi
    wait_port mosquitto 1883 "MQTT"
    suffix=" [started]"
  fi
  say "mosquitto up (mqtt 1883)$suffix"
}

# ---------------------------------------------------------------------------
# Redis

ensure_redis() {
  local suffix=""
  if ! port_open 6379; then
    need_root redis "not running on $HOST:6379"
    note "redis: starting ..."
    if have_systemd; then
      run redis "systemctl start redis-server" timeout 60 systemctl start redis-server
    else
      mkdir -p /var/lib/redis /var/log/redis
      run redis "redis-server" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
        --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    wait_port redis 6379 "redis"
    suffix=" [started]"
  fi
  say "redis up (6379)$suffix"
}

# ---------------------------------------------------------------------------

if [ "$want_rabbitmq" = 1 ]; then ensure_rabbitmq; fi
if [ "$want_mosquitto" = 1 ]; then ensure_mosquitto; fi
if [ "$want_redis" = 1 ]; then ensure_redis; fi
