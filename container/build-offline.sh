#!/usr/bin/env bash
# Build the grading image with Podman on a machine that reaches no image registry, and whose containers reach no
# PyPI: a Debian base made with debootstrap, and a wheelhouse of the project's dependencies made on the host.
#
#   container/build-offline.sh            # -> localhost/dlgrade (base: localhost/dlgrade-base)
#
# Needs root, podman, runc and debootstrap (apt-get install -y podman runc debootstrap uidmap), a Debian mirror
# over HTTP for debootstrap, and a host Python >= 3.11 whose pip can download the dependencies (wheels are picked
# for the image's Python, Debian bookworm's 3.11.2, and the host's platform: build on x86_64 glibc Linux).
# Every step is cached: the wheelhouse (wheelhouse/, kept out of git), the debootstrap root file system (a tarball
# under $DLGRADE_CONTAINER_CACHE) and the base image in Podman's store; a second run only rebuilds the image
# layers whose files changed.
#
# Settings (environment): IMAGE, BASE_IMAGE, PYTHON (host python for `pip download`), DEBIAN_MIRROR,
# DLGRADE_CONTAINER_CACHE, PODMAN (the podman command; default "podman --runtime runc": crun fails on cgroup v1
# hybrid hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/dlgrade}
BASE_IMAGE=${BASE_IMAGE:-localhost/dlgrade-base}
PYTHON=${PYTHON:-python3}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${DLGRADE_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dlgrade-container}
read -r -a PODMAN <<<"${PODMAN:-podman --runtime runc}"
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
BASE_PACKAGES=python3,python3-venv,python3-pip,bubblewrap
BASE_VERSION=2  # bump when the base changes: 2 = root folder mode 0755 (1 had mktemp's 0700, see below)

step() { printf '\n== %s\n' "$*" >&2; }
took() { printf '   done in %ss\n' "$(( $(date +%s) - $1 ))" >&2; }
start_all=$(date +%s)

# -- 1. base image: Debian bookworm (python3 is 3.11) from debootstrap ------------------------------------------
step "base image $BASE_IMAGE (debootstrap $SUITE)"
t=$(date +%s)
if [ "$("${PODMAN[@]}" image inspect --format '{{ index .Labels "dlgrade.base" }}' "$BASE_IMAGE" 2>/dev/null)" \
     = "$BASE_VERSION" ]; then
  echo "   already in podman's store" >&2
else
  mkdir -p "$CACHE"
  tarball="$CACHE/rootfs-$SUITE-v$BASE_VERSION.tar"
  if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || { echo "error: debootstrap needs root" >&2; exit 2; }
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    # the tarball's ./ entry is the image's /: mktemp's 0700 would keep every non-root uid out of the whole image
    # under some storage drivers (rootless Podman's vfs), student code included
    chmod 0755 "$rootfs"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' --change "LABEL dlgrade.base=$BASE_VERSION" \
    "$tarball" "$BASE_IMAGE" >/dev/null
fi
took "$t"

# -- 2. wheelhouse: exactly the dependencies in pyproject.toml, for the base image's Python --------------------
step "wheelhouse (pip download on the host)"
t=$(date +%s)
# the exact version matters: a wheel may require a newer patch release (soupsieve: >=3.11.5; bookworm has 3.11.2)
image_python=$("${PODMAN[@]}" run --rm --network none "${ULIMITS[@]}" "$BASE_IMAGE" \
  python3 -c 'import platform; print(platform.python_version())')
mkdir -p wheelhouse
"$PYTHON" - >wheelhouse/requirements.txt <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(project["project"]["dependencies"] + project["build-system"]["requires"] + ["wheel"]))
EOF
stamp="python $image_python $(sha256sum wheelhouse/requirements.txt | cut -c1-16)"
if [ "$(cat wheelhouse/.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "   up to date for Python $image_python ($(find wheelhouse -name '*.whl' | wc -l) wheels)" >&2
else
  rm -f wheelhouse/*.whl wheelhouse/.stamp
  # binary wheels only (the image installs with --no-index and has no compiler), for the image's Python; a
  # download that leaves no torch wheel (an index that did not answer) is tried once more, then an error
  for try in 1 2; do
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --python-version "$image_python" --dest wheelhouse -r wheelhouse/requirements.txt 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    if compgen -G "wheelhouse/torch-*.whl" >/dev/null; then break; fi
    echo "   no torch wheel in wheelhouse/ after pip download (try $try of 2)" >&2
    if [ "$try" = 2 ]; then
      echo "error: pip could not download the dependencies into wheelhouse/ (check $PYTHON's pip index)" >&2
      exit 1
    fi
  done
  echo "$stamp" >wheelhouse/.stamp
  echo "   $(find wheelhouse -name '*.whl' | wc -l) wheels for Python $image_python, $(du -sh wheelhouse | cut -f1)" >&2
fi
took "$t"

# -- 3. the grading image ----------------------------------------------------------------------------------------
step "image $IMAGE"
t=$(date +%s)
"${PODMAN[@]}" build "${ULIMITS[@]}" --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" -f Dockerfile . >&2
took "$t"
printf '\nbuilt %s in %ss; run it with\n  %s run --rm --network none %s -v COURSE:/course:Z %s\n' \
  "$IMAGE" "$(( $(date +%s) - start_all ))" "${PODMAN[*]}" "${ULIMITS[*]}" "$IMAGE" >&2
