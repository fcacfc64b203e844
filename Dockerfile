# rlrepro CPU image: `docker build -t rlrepro .` then `docker run --rm -v "$PWD/results:/app/results" rlrepro replicate-ppo`
# GPU image: a CUDA base with Python 3.11 and pip's default (CUDA) torch wheel, e.g.
#   docker build --build-arg BASE_IMAGE=<cuda image with python3.11> --build-arg TORCH_INDEX_URL= -t rlrepro:cuda .
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

# The PyTorch CPU wheel index for the CPU image (the wheel is ~200 MB instead of several GB); empty = PyPI's torch.
ARG TORCH_INDEX_URL=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUJOCO_GL=egl \
    VENV=/opt/venv

# MuJoCo's runtime libraries (EGL/OSMesa for rendering), make as the entry point, git for run provenance.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        make=4.3-4.1 git=1:2.39.5-0+deb12u3 libgl1=1.6.0-1 libegl1=1.6.0-1 libglfw3=3.3.8-1 \
        libosmesa6=22.3.6-1+deb12u2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 rl && mkdir -p /app /opt/venv && chown rl:rl /app /opt/venv
USER 1000:1000
WORKDIR /app

# The same install steps as CI (`make install`): pinned requirements first, for layer caching.
COPY --chown=rl:rl requirements.txt requirements-dev.txt pyproject.toml Makefile ./
COPY --chown=rl:rl replications ./replications
COPY --chown=rl:rl experiments ./experiments
COPY --chown=rl:rl analysis ./analysis
RUN PIP_EXTRA_INDEX_URL="${TORCH_INDEX_URL}" make install
COPY --chown=rl:rl . .

ENTRYPOINT ["make"]
CMD ["help"]
