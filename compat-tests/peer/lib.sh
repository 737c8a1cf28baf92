# Shared glue for the peer suites (sourced, not run). Starts and stops a
# throw-away Sluice broker on a free loopback port.
#
#   source compat-tests/peer/lib.sh
#   peer_start_sluice WORKDIR   # sets SLUICE_PORT, SLUICE_PID, SLUICE_LOG
#   ...
#   peer_stop_sluice
#
# SLUICE_BIN   broker binary (default <repo>/target/release/sluice); if it does
#              not exist yet we wait for it up to SLUICE_BIN_WAIT seconds (300).

PEER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$PEER_ROOT/../.." && pwd)"
: "${SLUICE_BIN:=$REPO_ROOT/target/release/sluice}"
: "${SLUICE_BIN_WAIT:=300}"

peer_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

peer_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

peer_wait_bin() {
  local waited=0
  while [[ ! -x "$SLUICE_BIN" ]]; do
    if (( waited >= SLUICE_BIN_WAIT )); then
      echo "peer: broker binary $SLUICE_BIN not found after ${waited}s" >&2
      return 1
    fi
    (( waited == 0 )) && echo "peer: waiting for $SLUICE_BIN ..." >&2
    sleep 5; waited=$((waited + 5))
  done
}

# peer_start_sluice WORKDIR [extra toml lines...]
# PEER_NUM_PARTITIONS (default 1) sets num.partitions for auto-created topics,
# PEER_AUTO_CREATE (default true) auto.create.topics.enable,
# PEER_REBALANCE_DELAY_MS (default 0) group.initial.rebalance.delay.ms.
peer_start_sluice() {
  local work="$1"; shift
  peer_wait_bin || return 1
  mkdir -p "$work/data"
  SLUICE_PORT="$(peer_free_port)"
  SLUICE_LOG="$work/sluice.log"
  {
    echo "\"group.initial.rebalance.delay.ms\" = ${PEER_REBALANCE_DELAY_MS:-0}"
    echo "\"auto.create.topics.enable\" = ${PEER_AUTO_CREATE:-true}"
    echo "\"num.partitions\" = ${PEER_NUM_PARTITIONS:-1}"
    local line
    for line in "$@"; do echo "$line"; done
  } > "$work/sluice.toml"
  "$SLUICE_BIN" --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$work/data" \
    --config "$work/sluice.toml" > "$SLUICE_LOG" 2>&1 &
  SLUICE_PID=$!
  local i
  for i in $(seq 1 300); do
    if peer_port_open "$SLUICE_PORT"; then
      return 0
    fi
    if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
      echo "peer: sluice exited during startup; log:" >&2
      tail -n 30 "$SLUICE_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "peer: sluice did not open port $SLUICE_PORT within 30s" >&2
  peer_stop_sluice
  return 1
}

peer_stop_sluice() {
  [[ -n "${SLUICE_PID:-}" ]] || return 0
  if kill -0 "$SLUICE_PID" 2>/dev/null; then
    kill -TERM "$SLUICE_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
      kill -0 "$SLUICE_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
      echo "peer: sluice did not stop on SIGTERM within 10s; killing" >&2
      kill -KILL "$SLUICE_PID" 2>/dev/null
    fi
  fi
  wait "$SLUICE_PID" 2>/dev/null
  SLUICE_PID=""
}
