# prober's container image: a static binary on distroless, as non-root, with
# the shipped probes.yaml and flows/ in /etc/prober.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v1.4.2 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t prober:v1.4.2 .
#
# internal/deploycheck runs this file's `go build` line (parsed from here, so
# the two cannot drift) and the binary as uid 65532 in a root holding only
# what this image ships; CI has no Docker engine.
#
# No HEALTHCHECK: distroless has no shell or curl to run one, and the prober
# has no health-probe subcommand. Orchestrators probe GET /healthz and
# /readyz on :8315 (ECS container health checks run inside the container
# too, so they are not used; an exiting essential container stops the task).
#
# The command below listens on 0.0.0.0:8315 in plain HTTP without
# authentication: publish the port only to what needs it. For TLS and basic
# auth, mount a directory with web-config.yml, its certificate and key
# (readable by 65532) and add --web.config.file to the command; health
# probes then need the credentials too. README, "Security".

# The base images, pinned by digest (tag kept beside it for people), so a
# build cannot change under you: the digest decides which image it is.
# These are the multi-platform index digests that independent public
# Dockerfiles (buildx multi-arch builds kept current by Dependabot and
# Renovate) pinned for these tags in late 2026; no registry was reachable
# where this file was edited to pull them. A wrong or withdrawn digest fails
# the pull loudly; it never builds on a different image. To move a base,
# resolve the tag's index digest and commit it (Renovate or Dependabot's
# docker ecosystem does this as a reviewable change):
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   (or: docker buildx imagetools inspect --format '{{.Manifest.Digest}}' IMAGE)
# tools/deploycheck's TestDockerfile fails on a base without one.
ARG GO_VERSION=1.26
ARG GO_IMAGE=golang:${GO_VERSION}@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
    -o /out/prober ./cmd/prober
# The state directory, owned by the nonroot user in the final image.
RUN mkdir -p /out/state

FROM ${BASE_IMAGE}
# distroless/static brings CA certificates (/etc/ssl/certs), tzdata and the
# nonroot user (65532); the binary also embeds time/tzdata.
ARG BASE_IMAGE
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
# The OCI annotations (image-spec annotations.md), from the same build args
# as the binary's stamp, so `docker inspect` and registries show what
# `prober version` says.
LABEL org.opencontainers.image.title="prober" \
      org.opencontainers.image.description="Synthetic monitoring: scripted HTTP flows probed on a schedule, Prometheus metrics, alerts" \
      org.opencontainers.image.source="https://github.com/prober-dev/prober" \
      org.opencontainers.image.url="https://github.com/prober-dev/prober" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build /out/prober /prober
COPY probes.yaml /etc/prober/probes.yaml
COPY flows/ /etc/prober/flows/
COPY --from=build --chown=65532:65532 /out/state /var/lib/prober
USER 65532:65532
# A VOLUME so that a fresh volume mounted here (docker run -v, an ECS task
# volume) starts out owned by 65532.
VOLUME ["/var/lib/prober"]
EXPOSE 8315
ENTRYPOINT ["/prober"]
CMD ["run", "--config", "/etc/prober/probes.yaml", "--listen", "0.0.0.0:8315", "--state-dir", "/var/lib/prober"]
