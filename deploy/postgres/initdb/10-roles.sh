#!/usr/bin/env bash
# Creates the Helpdesk Assistant database and its two roles. The official postgres image runs
# this once, on the first start with an empty data volume (docker-compose.yml mounts this
# folder as /docker-entrypoint-initdb.d); it is also safe to run again by hand against an
# existing server (PGHOST/PGUSER/PGPASSWORD pick the server), e.g. for a managed Postgres.
#
#   owner role    owns the database and schema; `helpdesk migrate` runs as it (and grants
#                 the runtime role its table privileges). No superuser, no role management.
#   runtime role  what the service connects as: owns nothing, cannot bypass row-level
#                 security, and gets only data privileges on the tables the owner creates.
set -euo pipefail

: "${HELPDESK_DATABASE_OWNER_PASSWORD:?HELPDESK_DATABASE_OWNER_PASSWORD is required}"
: "${HELPDESK_DATABASE_APP_PASSWORD:?HELPDESK_DATABASE_APP_PASSWORD is required}"

psql --no-psqlrc --quiet \
    --set ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" \
    --set database="${HELPDESK_DATABASE_NAME:-helpdesk}" \
    --set owner_role="${HELPDESK_DATABASE_OWNER_ROLE:-helpdesk_owner}" \
    --set app_role="${HELPDESK_DATABASE_APP_ROLE:-helpdesk_app}" \
    <<'SQL'
-- psql's :'var' quotes as a literal and format() with %I/%L quotes again for the statement,
-- so odd characters in names or passwords cannot break out. \gexec runs each generated
-- statement on its own (CREATE DATABASE refuses to run inside a transaction block).
-- Passwords are read from the environment, not passed as arguments, so they never show up
-- in a process listing.
\getenv owner_password HELPDESK_DATABASE_OWNER_PASSWORD
\getenv app_password HELPDESK_DATABASE_APP_PASSWORD

SELECT format('CREATE ROLE %I', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
-- Always (re)state the attributes, so a re-run also repairs a role someone loosened.
SELECT format(
    'ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION '
    'PASSWORD %L',
    :'owner_role', :'owner_password') \gexec
SELECT format(
    'ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION '
    'NOINHERIT PASSWORD %L',
    :'app_role', :'app_password') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'database') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'database', :'app_role') \gexec

\connect :"database"
-- Only the owner creates objects (PostgreSQL 15+ already withholds CREATE from PUBLIC;
-- older servers do not).
SELECT format('ALTER SCHEMA public OWNER TO %I', :'owner_role') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app_role') \gexec
-- Table privileges are granted by `helpdesk migrate` after each upgrade, table by table
-- (the audit log, for one, is append-only for the runtime role).
SQL
