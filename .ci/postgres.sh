# Lines for .ci/run to source before "cargo test --workspace": a fresh PostgreSQL database
# on the machine's server (127.0.0.1:5432, trust auth) and KEYWARD_TEST_POSTGRES_URL
# pointing at it, so the store tests run against PostgreSQL as well as SQLite (each test
# creates and drops a database of its own beside this one). Without the variable those
# tests say `skipped: KEYWARD_TEST_POSTGRES_URL not set` and pass on SQLite alone.
# Sourced by .ci/run.
if ! command -v psql >/dev/null 2>&1; then
    (apt-get install -y -qq postgresql-client >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq postgresql-client; })
fi
pg_user=postgres
psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -Atqc 'select 1' >/dev/null 2>&1 || pg_user=root
# Drops the databases whose names match the regular expression $1.
kw_pg_drop_matching() {
    psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -Atqc \
        "SELECT datname FROM pg_database WHERE datname ~ '$1'" |
        while read -r db; do
            psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
        done
}
# Earlier runs' databases whose shell has gone (kw_ci_PID, and the suite's kw_ci_PID_s_…).
for kw_old in $(psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -Atqc \
    "SELECT datname FROM pg_database WHERE datname ~ '^kw_ci_[0-9]+$'"); do
    kill -0 "${kw_old#kw_ci_}" 2>/dev/null || kw_pg_drop_matching "^${kw_old}(_s_[0-9a-f]+)?\$"
done
kw_pg_db=kw_ci_$$
psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $kw_pg_db" \
    -c "CREATE DATABASE $kw_pg_db"
export KEYWARD_TEST_POSTGRES_URL="postgres://$pg_user@127.0.0.1:5432/$kw_pg_db"
echo "PostgreSQL tests on $KEYWARD_TEST_POSTGRES_URL"

# The scale-out tests (crates/cli/tests/scaleout.rs) run servers of their own, which they
# kill and restart: NATS with JetStream (the nats-server binary) and a PostgreSQL cluster
# (initdb and pg_ctl). Without these variables those tests say they were skipped.
if ! command -v nats-server >/dev/null 2>&1; then
    (apt-get install -y -qq nats-server >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq nats-server; }) || true
fi
if command -v nats-server >/dev/null 2>&1; then
    export KEYWARD_TEST_NATS_SERVER=$(command -v nats-server)
fi
for kw_pg_bin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$kw_pg_bin/initdb" ] && [ -x "$kw_pg_bin/pg_ctl" ]; then
        export KEYWARD_TEST_PG_BIN=$kw_pg_bin
        break
    fi
done
echo "scale-out tests: nats-server ${KEYWARD_TEST_NATS_SERVER:-absent}, PostgreSQL binaries ${KEYWARD_TEST_PG_BIN:-absent}"
