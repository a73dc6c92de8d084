# slipway's CI image, built with no registry access: `cargo xtask ci-image`.
#
# The base is a Debian bookworm minbase rootfs made offline by
# `scripts/debian-image.sh ci` (debootstrap + docker import): sh, coreutils, tar,
# ca-certificates and curl. slipway is installed by install.sh from the artifacts of
# `cargo xtask dist`, checksum verified, exactly as a user installs it.
#
# What it holds: /usr/local/bin/slipway and the base above — no Rust, no Go, no
# Docker CLI, no kind/helm/kubectl. slipway downloads the tools a job needs into its
# cache (~/.cache/slipway, official releases whose SHA-256 is pinned in slipway or in
# the pipeline's [tools.sha256]) at run time, or uses
# the ones on PATH; a job that builds images brings a Docker CLI and engine (see
# examples/ci/).
#
# Build context (xtask assembles it): install.sh, SHA256SUMS and the archive.
ARG BASE=slipway-local/rootfs-ci:bookworm

FROM ${BASE} AS install
COPY install.sh SHA256SUMS slipway-*.tar.gz /dist/
RUN sh /dist/install.sh --from /dist --prefix /usr/local

FROM ${BASE}
COPY --from=install /usr/local/bin/slipway /usr/local/bin/slipway
WORKDIR /src
CMD ["slipway", "self-check"]
