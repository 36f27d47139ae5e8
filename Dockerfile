# syntax=docker/dockerfile:1
# Airlock's one image: `airlock webhook`, `airlock controller`, `airlock scan`, ...
#
#   docker build -t registry.corp.example/platform/airlock:0.1.0 .
#
# hack/build-image.sh (`make image`) builds the same image without Docker: Debian's python3
# instead of python.org's, the same /opt/airlock venv, user, entrypoint, command, working
# directory, environment and labels (it also sets org.opencontainers.image.version; add it here
# with --label). The two must stay equivalent: change them together.
#
# The base is pinned by digest (python 3.11 slim, Debian bookworm); update tag and digest
# together. Both stages use the same base, so the virtualenv built in the first one runs
# unchanged in the second, which has no compiler, no pip cache and no source tree.
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Build Airlock's wheel, then install it and its (binary-wheel) dependencies into a venv.
RUN python -m venv /opt/airlock \
 && /opt/airlock/bin/pip install --upgrade pip \
 && /opt/airlock/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/airlock/bin/pip install /wheels/kube_airlock-*.whl \
 && /opt/airlock/bin/pip uninstall --yes pip \
 && /opt/airlock/bin/python -m compileall -q /opt/airlock \
 && /opt/airlock/bin/airlock version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="airlock" \
      org.opencontainers.image.description="Security baseline for AI workloads on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/airlock /opt/airlock
# A passwd/group entry for the non-root user, so that a user name can be looked up
# (getpass.getuser(), `id`); no home, no login shell.
RUN echo 'airlock:x:65532:65532:Airlock:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'airlock:x:65532:' >>/etc/group
# Bytecode is compiled at build time; nothing is written at run time, so the container runs
# with a read-only root filesystem (the chart mounts an emptyDir at /tmp for Python's tempfile).
ENV PATH=/opt/airlock/bin:${PATH} \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A non-root user by number (the chart's runAsUser), named airlock in /etc/passwd above.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["airlock"]
CMD ["--help"]
