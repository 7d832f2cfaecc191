# Shared by the bench scripts (source it): a scratch directory and background servers that are
# cleaned up on exit, free ports, readiness polling with a deadline.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # poll with a deadline, never a fixed sleep
  local url=$1 deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "$url"; do
    [ $SECONDS -lt $deadline ] || { echo "not ready: $url" >&2; exit 1; }
    sleep 0.05
  done
}
status_kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }  # pid VmRSS|VmHWM
