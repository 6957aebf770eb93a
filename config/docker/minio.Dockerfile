# MinIO for docker-compose, built from the same pinned source as the local stack's
# (stack/install.py MINIO_VERSION: MinIO's community edition ships as source, and its
# published images stopped; a tag such as `latest` would be whatever the registry holds).
FROM golang:1.26-bookworm AS build
ARG MINIO_VERSION
RUN test -n "$MINIO_VERSION" \
    && CGO_ENABLED=0 go install -ldflags="-s -w" -gcflags=all=-dwarf=false "github.com/minio/minio@${MINIO_VERSION}"

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /data minio && mkdir /data && chown minio /data
COPY --from=build /go/bin/minio /usr/local/bin/minio
USER minio
ENTRYPOINT ["minio"]
