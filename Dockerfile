# backup-kit: the tools as static binaries, backup.sh and busybox crond on Alpine.
#   docker build -t backup-kit .
#   docker run -v backups:/data/backups -e POSTGRES_PASSWORD_FILE=/run/secrets/pg ... backup-kit

FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev binutils
WORKDIR /src
COPY . .
RUN scripts/build-static.sh

FROM alpine:3.19
# pg_dump must be at least the server's major version: 16 dumps servers 9.2–16.
# Set PG_MAJOR to the server's major version when it is newer.
ARG PG_MAJOR=16
RUN apk add --no-cache "postgresql${PG_MAJOR}-client" tzdata ca-certificates curl rclone \
 && { command -v flock >/dev/null || apk add --no-cache util-linux-misc; } \
 && for c in flock setsid crond tail pg_dump psql; do command -v "$c" >/dev/null || exit 1; done \
 && addgroup -S -g 10001 backup \
 && adduser -S -D -u 10001 -h /home/backup -s /bin/sh -G backup backup \
 && mkdir -p /data/backups /etc/crontabs \
 && chown backup:backup /data/backups \
 && chmod 700 /data/backups
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/pg-dumpwrap \
                  /src/target/x86_64-unknown-linux-musl/release/minio-snap \
                  /src/target/x86_64-unknown-linux-musl/release/qdrant-snap \
                  /src/target/x86_64-unknown-linux-musl/release/n8n-export \
                  /src/target/x86_64-unknown-linux-musl/release/backup-prune \
                  /src/target/x86_64-unknown-linux-musl/release/backup-verify \
                  /src/target/x86_64-unknown-linux-musl/release/backup-report \
                  /usr/local/bin/
COPY scripts/backup.sh scripts/restore.sh scripts/offsite-pull.sh scripts/entrypoint.sh /usr/local/bin/
COPY scripts/crontab.example /usr/local/share/backup-kit/crontab.example

ENV BACKUP_DIR=/data/backups \
    BACKUP_SCHEDULE="0 2 * * *" \
    BACKUP_USER=backup \
    TZ=Europe/Berlin
VOLUME /data/backups

# PID 1 is entrypoint.sh with busybox crond under it; both root, because crond
# must be to run each job as the backup user (as any other user it fails every
# job with "can't set groups"). Every backup, prune, verify and report runs as
# `backup`. On SIGTERM the entrypoint stops a running backup cleanly first.
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]

# Unhealthy when the last report is not `completed`, or when a scheduled run is
# more than two hours overdue (backup-report --health; BACKUP_SCHEDULE and TZ
# come from the container's environment).
HEALTHCHECK --interval=5m --timeout=30s --start-period=1m \
    CMD ["backup-report", "--health", "--started-file", "/run/backup-kit.started"]
