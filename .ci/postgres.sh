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
kw_pg_db=kw_ci_$$
psql -h 127.0.0.1 -p 5432 -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $kw_pg_db" \
    -c "CREATE DATABASE $kw_pg_db"
export KEYWARD_TEST_POSTGRES_URL="postgres://$pg_user@127.0.0.1:5432/$kw_pg_db"
echo "PostgreSQL tests on $KEYWARD_TEST_POSTGRES_URL"
