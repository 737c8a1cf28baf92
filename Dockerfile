# Builds the broker and runs it as a single node. Data lives in /data (a volume).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin sluice

FROM debian:bookworm-slim
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
VOLUME /data
EXPOSE 9092
ENV SLUICE_LISTEN=0.0.0.0:9092 \
    SLUICE_DATA_DIR=/data
ENTRYPOINT ["/usr/local/bin/sluice"]
