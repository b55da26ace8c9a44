#!/bin/bash
# Switchboard's scheduled PostgreSQL backup, run by the compose `backup` service and the Kubernetes
# CronJob in the official postgres image (Debian-based: bash, GNU date; its pg_dump matches the
# server's major version).
#
# Writes `switchboard-<UTC time>.pgdump` (pg_dump's custom format, the same file
# `switchboard backup --dir` writes and `switchboard restore` reads) into BACKUP_DIR, then keeps the
# newest backup of each of the last KEEP_DAILY days (7), KEEP_WEEKLY ISO weeks (4) and KEEP_MONTHLY
# months (12) and deletes the others. With BACKUP_INTERVAL_SECONDS set it runs again after that many
# seconds, for ever (compose has no cron); unset, it runs once (the CronJob schedules it).
#
#   DATABASE_URL   postgres://user:password@host:5432/db (required; the password goes to
#                  PGPASSWORD, never to pg_dump's command line)
#   BACKUP_DIR     where the backups live (default /backups); copy it off the host too
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL is required}"
BACKUP_DIR="${BACKUP_DIR:-/backups}"
KEEP_DAILY="${KEEP_DAILY:-7}"
KEEP_WEEKLY="${KEEP_WEEKLY:-4}"
KEEP_MONTHLY="${KEEP_MONTHLY:-12}"

backup_once() {
  mkdir -p "$BACKUP_DIR"
  name="switchboard-$(date -u +%Y-%m-%dT%H%M%SZ).pgdump"
  # postgres://user:password@host/db → the password apart (percent-decoded), the URL without it.
  local encoded password url
  encoded=$(printf '%s' "$DATABASE_URL" | sed -n 's#^[a-z]*://[^:/@]*:\([^@]*\)@.*#\1#p')
  password=$(printf '%b' "${encoded//%/\\x}")
  url=$(printf '%s' "$DATABASE_URL" | sed 's#^\([a-z]*://[^:/@]*\):[^@]*@#\1@#')
  PGPASSWORD="$password" pg_dump --format=custom --no-owner --no-privileges \
    --file="$BACKUP_DIR/$name.partial" --dbname="$url"
  mv "$BACKUP_DIR/$name.partial" "$BACKUP_DIR/$name"
  echo "backup written: $BACKUP_DIR/$name ($(wc -c < "$BACKUP_DIR/$name") bytes)"
  prune
}

# The newest backup of each period is kept; names sort by time, so newest first is `sort -r`. The
# few processes it starts do not grow with the number of backups (one `date` reads every day).
prune() {
  local files days index kept dropped
  files=$(ls -1 "$BACKUP_DIR" | grep -E '^switchboard-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{6}Z\.(pgdump|tar\.gz)$' | sort -r || true)
  [ -n "$files" ] || return 0
  index=$(mktemp)
  kept=$(mktemp)
  dropped=$(mktemp)
  # One line per backup: its name, day, ISO week and month (the day is the name's characters 13-22).
  days=$(printf '%s\n' "$files" | cut -c13-22)
  paste -d ' ' <(printf '%s\n' "$files") <(printf '%s\n' "$days") \
    <(printf '%s\n' "$days" | date -u -f - +%G-W%V) <(printf '%s\n' "$days" | cut -c1-7) > "$index"
  newest() { awk -v col="$1" -v n="$2" '!($col in seen) { if (count >= n) exit; seen[$col] = 1; count++; print $1 }' "$index"; }
  { newest 2 "$KEEP_DAILY"; newest 3 "$KEEP_WEEKLY"; newest 4 "$KEEP_MONTHLY"; } | sort -u > "$kept"
  awk 'NR == FNR { keep[$1] = 1; next } !($1 in keep) { print $1 }' "$kept" "$index" > "$dropped"
  # The names matched the pattern above: no spaces, no newlines.
  (cd "$BACKUP_DIR" && xargs -r rm -f -- < "$dropped")
  sed 's/^/removed: /' "$dropped"
  rm -f "$index" "$kept" "$dropped"
}

if [ -n "${BACKUP_INTERVAL_SECONDS:-}" ]; then
  while true; do
    backup_once || echo "backup failed; next try in ${BACKUP_INTERVAL_SECONDS} s" >&2
    sleep "$BACKUP_INTERVAL_SECONDS"
  done
else
  backup_once
fi
