#!/usr/bin/env bash
# berth serve with its PostgreSQL cluster: time from start to ready (the front door answers, which
# berth only does once PostgreSQL accepts connections and the databases are converged) on a new
# and on an existing cluster, side by side with `pg_ctl start -w` of the same cluster (the floor:
# the server alone), and berth's own RSS next to the server's. Usage: bench/postgres.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-5}
berth=build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
chmod o+x "$work"  # as root, the server runs as postgres and must enter the scratch dir
as_server_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

port=$(free_port)
cat > "$work/berth.yaml" <<YAML
log:
  level: info
volumes:
  primary: $work/var
  backup: $work/backup
server:
  listen: "127.0.0.1:$port"
databases:
  - name: shop
  - name: billing
YAML

berth_start() {  # sets start_ms: from exec to ready
  local began; began=$(now_ms)
  "$berth" --config "$work/berth.yaml" serve >>"$work/berth.log" 2>&1 &
  berth_pid=$!
  pids+=("$berth_pid")
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
    kill -0 "$berth_pid" 2>/dev/null || { echo "berth exited; log:" >&2; cat "$work/berth.log" >&2; exit 1; }
    [ $(($(now_ms) - began)) -lt 60000 ] || { echo "berth not ready in 60 s" >&2; exit 1; }
    sleep 0.01
  done
  start_ms=$(($(now_ms) - began))
}
berth_stop() { kill -TERM "$berth_pid"; wait "$berth_pid" || true; }

berth_start
berth_stop
echo "berth serve, new cluster (initdb + start + 2 databases): ${start_ms} ms"

berth_total=0
pg_total=0
for run in $(seq "$runs"); do
  berth_start
  ms=$start_ms
  berth_total=$((berth_total + ms))
  rss=$(status_kib "$berth_pid" VmRSS)
  # pg_ctl gets the same memory settings, so both start the same server.
  settings=$(PGPASSWORD=$(cat "$work/var/secrets/postgres-superuser") psql -h "$work/var/run/postgres" -U berth \
    -d postgres -XAtc "SELECT string_agg('-c ' || name || '=' || current_setting(name), ' ')
      FROM pg_settings WHERE name IN ('shared_buffers', 'effective_cache_size', 'max_connections')")
  postmaster=$(head -1 "$work/var/postgres/postmaster.pid")
  server_rss=$(status_kib "$postmaster" VmRSS)
  for pid in $(pgrep -P "$postmaster"); do server_rss=$((server_rss + $(status_kib "$pid" VmRSS || echo 0))); done
  berth_stop

  began=$(now_ms)
  as_server_user "$bin/pg_ctl" start -w -s -D "$work/var/postgres" -l "$work/var/postgres/pg_ctl.log" \
    -o "-k $work/var/run/postgres -c listen_addresses= $settings" >/dev/null
  pg_ms=$(($(now_ms) - began))
  pg_total=$((pg_total + pg_ms))
  as_server_user "$bin/pg_ctl" stop -w -s -m fast -D "$work/var/postgres" >/dev/null
  echo "run $run: berth serve ${ms} ms (berth RSS ${rss} KiB, postgres processes ${server_rss} KiB) | pg_ctl start -w ${pg_ms} ms"
done
awk -v b="$berth_total" -v p="$pg_total" -v n="$runs" 'BEGIN {
  printf "existing cluster, mean of %d: berth serve %.0f ms, pg_ctl start -w %.0f ms, ratio %.2f\n", n, b / n, p / n, b / p }'
