# syntax=docker/dockerfile:1
#
# Kite's image: the static `kite` binary on debian:12-slim, running as uid 65532.
#
#   docker build -t ghcr.io/kiteflow/kite:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -p 7777:7777 -p 8080:8080 -v kite-data:/var/lib/kite ghcr.io/kiteflow/kite:dev
#   kite flow list --server localhost:7777
#
# The base image has a shell on purpose. Workers run the shell Commands tasks
# (io.kestra.plugin.scripts.shell.Commands) with `/bin/sh -c` (core/tasks/run_commands.go),
# and the commands flows carry expect the usual tools: a shell, coreutils, sed, grep,
# find. distroless/static has no /bin/sh, so those tasks would fail on it. alpine has
# busybox's sh and applets and musl, which differ from what scripts written for bash and
# GNU tools (Kestra's images are Debian/Ubuntu-based) expect. debian:12-slim is small
# (~75 MB), has dash, bash and coreutils, and apt-get for images built FROM this one that
# add the tools of your flows (python3, curl, jq…). The binary itself is static
# (CGO_ENABLED=0: the embedded index is pure-Go SQLite, time zones are compiled in) and
# needs only the CA certificates for TLS to Kafka, Elasticsearch and GCS.
#
# Needs BuildKit (Docker 23+ uses it by default): cache mounts and the heredoc below.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
# The version `kite version` prints (cmd/kite/version.go).
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kite ./cmd/kite

FROM debian:12-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="kite" \
      org.opencontainers.image.description="Kite, a workflow orchestration engine on Kafka" \
      org.opencontainers.image.source="https://github.com/kiteflow/kite" \
      org.opencontainers.image.version="${VERSION}"
# uid/gid 65532 as in distroless' nonroot: the chart's securityContext runs as it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 kite \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /var/lib/kite \
         --shell /usr/sbin/nologin kite \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/kite
COPY --from=build /out/kite /usr/local/bin/kite
# A configuration for `docker run`: listen on every interface (Kite's defaults are
# localhost), data in /var/lib/kite. The Helm chart mounts its own ConfigMap over
# /etc/kite. KITE_<SECTION>_<FIELD> variables override any key (docs/server.md).
COPY <<EOF /etc/kite/config.yaml
data_dir: /var/lib/kite
health_addr: 0.0.0.0:7778
metrics_addr: 0.0.0.0:9464
api:
  grpc_addr: 0.0.0.0:7777
  http_addr: 0.0.0.0:8080
EOF
ENV KITE_CONFIG=/etc/kite/config.yaml
USER 65532:65532
WORKDIR /var/lib/kite
# gRPC API, HTTP (webhooks, /metrics of the api), gRPC health, /metrics of the other roles.
EXPOSE 7777 8080 7778 9464
ENTRYPOINT ["kite"]
CMD ["server", "standalone"]
