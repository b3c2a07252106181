# The grading image: runs `dlgrade grade /course` on a course folder (nbgrader's layout, with dlgrade's checks/ and
# solutions/: see the README, "Your own course") mounted at /course. Works with Docker and Podman.
#
#   docker build -t dlgrade .
#   docker run --rm --network none --cap-add SYS_ADMIN,NET_ADMIN -v "$PWD/course:/course" dlgrade
#   docker run --rm --network none --cap-add SYS_ADMIN,NET_ADMIN -v "$PWD/course:/course" dlgrade grade /course \
#       --assignment a1_linear_regression
#
# Offline build: put wheels of the dependencies in wheelhouse/ (pip download on a machine with the same Python;
# container/build-offline.sh does this and builds with Podman from a debootstrap base); then nothing is fetched.
# Without wheelhouse/, torch comes from TORCH_INDEX (CPU by default) and the rest from PyPI.
#
# GPU variant: a CUDA base and the CUDA wheel of the same torch version (it brings cuDNN and cuBLAS as wheels), run
# with the GPUs passed through (NVIDIA Container Toolkit; Podman: --device nvidia.com/gpu=all):
#   docker build -t dlgrade-gpu --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-base-ubuntu24.04 \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
#   docker run --rm --gpus all --network none -v "$PWD/course:/course" dlgrade-gpu
#
# Sandbox protections inside a container (`dlgrade grade` prints them): run it with --cap-add SYS_ADMIN,NET_ADMIN, so
# that bubblewrap can add its namespaces (no network, a filesystem view without the course, private /tmp); bubblewrap
# drops both capabilities before student code runs, and student code runs as its own unprivileged uid, which cannot
# read the mounted course or the built-in one. Without them `dlgrade grade` refuses to grade, unless told to accept
# the risk (`grade /course --allow-weak-sandbox`). `--user 1000:1000 --security-opt systempaths=unconfined` runs
# nothing as root and relies on bubblewrap's user namespaces instead. See the README, "Grading in a container".

ARG BASE_IMAGE=python:3.11-slim

# -- system: Python with venv support (installed when the base has none, e.g. a CUDA base), bubblewrap ----------
FROM ${BASE_IMAGE} AS system
ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN set -eu; \
    need=""; \
    command -v python3 >/dev/null 2>&1 || need="python3"; \
    python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need="$need python3-venv"; \
    command -v bwrap >/dev/null 2>&1 || need="$need bubblewrap"; \
    if [ -n "$need" ]; then \
      if command -v apt-get >/dev/null 2>&1; then \
        ( export DEBIAN_FRONTEND=noninteractive; apt-get update -qq \
          && apt-get install -y -qq --no-install-recommends $need && rm -rf /var/lib/apt/lists/* ) \
          || echo "warning: could not install:$need"; \
      else \
        echo "warning: no apt-get in the base image; not installed:$need"; \
      fi; \
    fi; \
    python3 -c "import ensurepip, venv" || { echo "error: the base image needs python3 with venv" >&2; exit 1; }; \
    command -v bwrap >/dev/null 2>&1 \
      || echo "note: no bubblewrap; the grader runs with fewer protections (see dlgrade doctor)"; \
    python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv

# -- requirements: the dependencies of pyproject.toml, with wheelhouse/ when the build context has one ------------
FROM system AS requirements
# `wheelhous[e]` matches nothing when there is no wheelhouse/, and the build goes on
COPY pyproject.toml wheelhous[e] /tmp/build/
RUN cd /tmp/build && python -c "import sys, importlib; \
t = importlib.import_module('tomllib' if sys.version_info >= (3, 11) else 'pip._vendor.tomli'); \
p = t.load(open('pyproject.toml', 'rb')); \
print('\n'.join(p['project']['dependencies'] + p['build-system']['requires'] + ['wheel']))" >requirements.txt \
    && rm pyproject.toml

# -- deps: installed into /opt/venv (a layer that stays cached while the requirements and wheels do not change) --
FROM system AS deps
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY --from=requirements /tmp/build /tmp/build
RUN set -eu; cd /tmp/build; \
    if ls ./*.whl >/dev/null 2>&1; then \
      echo "installing from the wheelhouse ($(ls ./*.whl | wc -l) wheels), no network"; \
      pip install --no-index --find-links /tmp/build -r requirements.txt; \
    else \
      echo "no wheelhouse/: torch from $TORCH_INDEX, the rest from PyPI"; \
      pip install --index-url "$TORCH_INDEX" "$(grep -E '^torch([<>=!~ ]|$)' requirements.txt)"; \
      pip install -r requirements.txt; \
    fi

# -- the image ------------------------------------------------------------------------------------------------------
FROM system
COPY --from=deps /opt/venv /opt/venv
# the tool, installed as a wheel would be: the package, with the built-in course inside it (for `dlgrade init` and
# `dlgrade demo`); a course to grade is mounted at run time (below)
COPY pyproject.toml setup.py MANIFEST.in README.md nbgrader_config.py /opt/dlgrade-src/
COPY autograder /opt/dlgrade-src/autograder
COPY source /opt/dlgrade-src/source
COPY assignments /opt/dlgrade-src/assignments
COPY solutions /opt/dlgrade-src/solutions
COPY checks /opt/dlgrade-src/checks
COPY probes /opt/dlgrade-src/probes
RUN set -eu; \
    pip install --no-index --no-deps --no-build-isolation /opt/dlgrade-src; \
    rm -rf /opt/dlgrade-src; \
    if ! getent passwd 1000 >/dev/null; then \
      useradd --uid 1000 --user-group --create-home grader 2>/dev/null \
      || { echo "grader:x:1000:1000::/home/grader:/bin/sh" >>/etc/passwd; echo "grader:x:1000:" >>/etc/group; }; \
    fi; \
    builtin=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/autograder/builtin_course; \
    chown -R root:1000 "$builtin"; \
    chmod -R o-rwx "$builtin"; \
    mkdir -m 0750 /opt/dlgrade && chgrp 1000 /opt/dlgrade; \
    mkdir -m 0750 /srv/dlgrade && chgrp 1000 /srv/dlgrade && mkdir /srv/dlgrade/course; \
    ln -s /srv/dlgrade/course /course; \
    dlgrade init /tmp/builtin >/dev/null && DLGRADE_CACHE=/opt/dlgrade/cache dlgrade warm --course /tmp/builtin; \
    rm -rf /tmp/builtin; \
    chown -R root:1000 /opt/dlgrade/cache && chmod -R u=rwX,g=rX,o= /opt/dlgrade/cache; \
    dlgrade doctor
# Root starts the grader only so that it can run each student's code as its own unprivileged uid (61000 + worker),
# which cannot read the built-in course in the package (references, checks) or the reference cache: those belong to
# root and group 1000. /course is a link into /srv/dlgrade, so the course mounted there (its nbgrader_config.py,
# source/, release, solutions/, checks/, probes/ and submitted/) is out of those uids' reach too (no reading a
# reference, no copying a classmate's notebook). What the grader writes there goes to the folder's owner.
# `--user 1000:1000` runs everything as the non-root user instead (then student code runs as that user too).
# The built-in course's reference outputs (dlgrade warm, above) are in /opt/dlgrade/cache, keyed by the content of
# the references and checks: a course made with `dlgrade init` skips recomputing them.
ENV DLGRADE_CACHE=/opt/dlgrade/cache MPLCONFIGDIR=/tmp/matplotlib MPLBACKEND=Agg
WORKDIR /course
ENTRYPOINT ["dlgrade"]
CMD ["grade", "/course"]
