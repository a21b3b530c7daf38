#!/usr/bin/env bash
# Local stand-ins for the public base images, built from Debian's packages with debootstrap,
# for machines that reach Debian and PyPI but no image registry.
#
#   sudo docker/build-local-base.sh          # or as root; needs debootstrap and podman
#
# Tags (in podman's local storage, found by `podman build --pull=never`):
#   docker.io/library/python:3.11-slim-bookworm   Debian bookworm's Python 3.11 with venv and
#                                                 pip: what docker/Dockerfile's default
#                                                 PYTHON_IMAGE names, so the Dockerfile builds
#                                                 unchanged
#   localhost/lossserve-nginx:bookworm            Debian bookworm's nginx (1.22) and wget, for
#                                                 docker-compose.local.yml (the public
#                                                 nginx:1.28-alpine is not reachable)
#
# The root filesystems are minbase debootstraps; the packages' .debs are cached in
# DEBOOTSTRAP_CACHE (default ~/.cache/lossserve-debootstrap), so a second run is quick.
# An image that is already there is kept; REBUILD=1 replaces it.
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=${DEBOOTSTRAP_CACHE:-$HOME/.cache/lossserve-debootstrap}
PYTHON_TAG=docker.io/library/python:3.11-slim-bookworm
NGINX_TAG=localhost/lossserve-nginx:bookworm

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }
mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build TAG PACKAGES CHANGE...: debootstrap SUITE with PACKAGES, slimmed, imported as TAG.
build() {
  local tag=$1 packages=$2
  shift 2
  if [ -z "${REBUILD:-}" ] && podman image exists "$tag"; then
    echo "$tag: already built (REBUILD=1 to replace it)"
    return
  fi
  local start=$SECONDS root="$work/${tag//[^a-z0-9]/-}"
  debootstrap --variant=minbase --cache-dir="$CACHE" --include="$packages" \
    "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
  # what an image does not need: apt's lists and caches, documentation, locales
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  local changes=()
  for change in "$@"; do changes+=(--change "$change"); done
  tar -C "$root" -c . | podman import "${changes[@]}" - "$tag" >/dev/null
  echo "$tag: $(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) in $((SECONDS - start)) s"
}

build "$PYTHON_TAG" python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  'ENV LANG=C.UTF-8' \
  'CMD ["python3"]'
build "$NGINX_TAG" nginx-light,wget,ca-certificates \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  'STOPSIGNAL SIGQUIT' \
  'CMD ["nginx", "-g", "daemon off;"]'
