# syntax=docker/dockerfile:1
# callout in a container: a build stage with the Rust toolchain, and a small
# Debian runtime that runs the daemon as a non-root user.
#
#   docker build -t callout .
#   docker run -d --name callout \
#     -v /srv/callout/callout.toml:/etc/callout/callout.toml:ro \
#     -v callout-state:/var/lib/callout \
#     -e CALLOUT_SMTP_PASSWORD \
#     --stop-timeout 3600 callout
#
# The config's [store] path should be /var/lib/callout/callout.db (the volume).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds;
# the binary is copied out because the target directory is not in the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/callout /out/callout

FROM debian:bookworm-slim
# CA roots for SMTP over TLS and HTTPS sources. Time zones are compiled into
# the binary (chrono-tz), so no tzdata.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 callout \
 && useradd --system --uid 10001 --gid callout --home-dir /var/lib/callout \
      --no-create-home --shell /usr/sbin/nologin callout \
 && install -d -o callout -g callout -m 0750 /var/lib/callout \
 && install -d -m 0755 /etc/callout
COPY --from=build /out/callout /usr/local/bin/callout

# State: the SQLite store (runs, findings, incidents, the mail queue).
VOLUME ["/var/lib/callout"]
WORKDIR /var/lib/callout
# Numeric, so orchestrators can verify runAsNonRoot.
USER 10001:10001
# The daemon's run/reload/shutdown lines are at info.
ENV CALLOUT_LOG=info
# SIGTERM lets the run in progress finish (up to [schedule] run_timeout_secs)
# and exits 0; give `docker stop` / the orchestrator at least that long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["callout"]
CMD ["run", "--config", "/etc/callout/callout.toml", "--log-format", "json"]
