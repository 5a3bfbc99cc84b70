# syntax=docker/dockerfile:1
# flashsale: a multi-stage build. cargo-chef caches the dependency build in its own layer, so a
# change to src/ rebuilds only the service itself.

FROM lukemathwalker/cargo-chef:latest-rust-1-bookworm AS chef
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --bin flashsale --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin flashsale

FROM debian:bookworm-slim AS runtime
# ca-certificates: rediss:// to a managed Redis verifies its certificate against the system store.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin flashsale
# Only the binary: the Lua scripts are embedded in it.
COPY --from=builder /app/target/release/flashsale /usr/local/bin/flashsale
USER flashsale:flashsale
ENV HOST=:: PORT=8080 LOG_FORMAT=json RUST_LOG=info
EXPOSE 8080
# SIGTERM stops accepting, lets in-flight purchases finish (10 s at most), then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flashsale"]
