#!/usr/bin/env bash
# Migrations side by side: `berth db migrate` applying N small versioned migrations (create table,
# insert, alter; Flyway's rules: one transaction per migration with its history row) against
# `psql -1 -f` running the same SQL concatenated in one transaction (the floor: no history, no
# per-migration commit). Then `berth db info` over the resulting N-row history. Each run uses
# fresh databases on one private PostgreSQL started here (initdb into a temp dir, Unix socket
# only). Prints the median times and berth's ratio to the floor. Not a test: numbers go into
# issue notes.
#
#   bench/flyway.sh [MIGRATIONS] [RUNS]     (after scripts/build.sh; defaults 500 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
migrations=${1:-500}
runs=${2:-3}
berth=build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
if [ ! -x "$pg_bin/initdb" ]; then echo "missing PostgreSQL: apt-get install postgresql" >&2; exit 1; fi
for tool in psql python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install postgresql-client python3 curl" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository
now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# --- A private PostgreSQL ------------------------------------------------------------------
# PostgreSQL refuses to run as root: the server runs as `postgres` then, in a directory it owns.
as_server=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "running as root needs a postgres user (apt-get install postgresql)" >&2; exit 1; }
  as_server=(runuser -u postgres --)
  chmod 711 "$work"
fi
pg=$work/pg
mkdir -p "$pg/run"
[ ${#as_server[@]} -eq 0 ] || chown -R postgres: "$pg"
port=$(free_port)
"${as_server[@]}" "$pg_bin/initdb" -D "$pg/data" -U postgres -A trust --no-sync >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; exit 1; }
stop_server() { "${as_server[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'stop_server; cleanup' EXIT
"${as_server[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 30 \
  -o "-c listen_addresses='' -c unix_socket_directories=$pg/run -p $port" start >/dev/null
url() { echo "postgresql:///$1?host=$pg/run&port=$port&user=postgres"; }
sql() { psql -X -q -v ON_ERROR_STOP=1 "$(url postgres)" -c "$1" >/dev/null; }

# --- N small migrations, and the same SQL in one file ----------------------------------------
mkdir -p "$work/migrations"
for ((version = 1; version <= migrations; version++)); do
  cat >"$work/migrations/V${version}__step_${version}.sql" <<SQL
CREATE TABLE step_${version} (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO step_${version} (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three');
ALTER TABLE step_${version} ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
SQL
done
for ((version = 1; version <= migrations; version++)); do
  cat "$work/migrations/V${version}__step_${version}.sql"
done >"$work/all.sql"

# --- Runs ------------------------------------------------------------------------------------
: >"$work/floor.times"
: >"$work/berth.times"
: >"$work/info.times"
: >"$work/info.cpu"
for ((run = 1; run <= runs; run++)); do
  echo "run $run/$runs: psql -1 -f, then berth db migrate ($migrations migrations) ..." >&2
  sql "CREATE DATABASE floor_$run"
  sql "CREATE DATABASE berth_$run"
  t0=$(now)
  psql -X -q -1 -v ON_ERROR_STOP=1 "$(url "floor_$run")" -f "$work/all.sql" >/dev/null
  seconds_since "$t0" >>"$work/floor.times"

  t0=$(now)
  "$berth" --config /dev/null --log-level warn db migrate --url "$(url "berth_$run")" \
    --location "$work/migrations" >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
  seconds_since "$t0" >>"$work/berth.times"
  applied=$(psql -X -At "$(url "berth_$run")" -c "SELECT count(*) FROM flyway_schema_history WHERE success")
  [ "$applied" = "$migrations" ] || { echo "berth recorded $applied of $migrations migrations" >&2; exit 1; }

  for _ in 1 2 3; do
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$work/info.rusage" "$berth" --config /dev/null --log-level warn db info \
      --url "$(url "berth_$run")" --location "$work/migrations" >"$work/info.out" 2>&1 ||
      { cat "$work/info.out" >&2; exit 1; }
    seconds_since "$t0" >>"$work/info.times"
    awk '{ print $1 + $2 }' "$work/info.rusage" >>"$work/info.cpu"
  done
  rows=$(grep -c '| Success ' "$work/info.out" || true)
  [ "$rows" = "$migrations" ] || { echo "berth db info listed $rows successful migrations" >&2; exit 1; }
done

# --- Report ----------------------------------------------------------------------------------
floor=$(median <"$work/floor.times")
berth_s=$(median <"$work/berth.times")
info_ms=$(median <"$work/info.times" | awk '{ printf "%.0f", $1 * 1000 }')
info_cpu_ms=$(median <"$work/info.cpu" | awk '{ printf "%.0f", $1 * 1000 }')
start_ms=$(for _ in 1 2 3 4 5; do t0=$(now); "$berth" --version >/dev/null; seconds_since "$t0"; done | median |
  awk '{ printf "%.0f", $1 * 1000 }')
server=$("$pg_bin/postgres" --version)
printf '\n%d migrations (create table, insert 3 rows, alter), median of %d runs, %s, %s CPUs\n' \
  "$migrations" "$runs" "$server" "$(nproc)"
printf '%-44s %10s\n' step 'seconds'
printf '%-44s %10s\n' 'psql -1 -f (one transaction, the floor)' "$floor"
printf '%-44s %10s\n' 'berth db migrate (one transaction each)' "$berth_s"
printf '\nberth/floor: x%s (target < x2)\n' "$(awk -v a="$berth_s" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')"
printf 'berth db info on the %d-row history: %s ms wall, %s ms CPU (process start to exit, median of %d; ' \
  "$migrations" "$info_ms" "$info_cpu_ms" "$((runs * 3))"
printf 'target < 100 ms); berth --version alone: %s ms\n' "$start_ms"
printf 'load average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
