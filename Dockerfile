# rlrepro image. `make docker-check` builds it and runs it (README "Docker").
#
# CPU image (the default): `docker build -t rlrepro .` takes torch 2.13.0's CPU build (about 200 MB) from
# PyTorch's CPU wheel index, never PyPI's CUDA build (gigabytes of NVIDIA libraries); the build fails if a CUDA
# build slipped in.
# CUDA image: a CUDA base with Python 3.11, pip's default torch and the variant named, e.g.
#   docker build --build-arg BASE_IMAGE=<cuda image with python3.11> --build-arg TORCH_INDEX_URL= \
#     --build-arg TORCH_VARIANT=cuda -t rlrepro:cuda .
# Behind a TLS-inspecting proxy, give pip the proxy's CA bundle as a build secret (used for the build only,
# never stored in the image): docker build --secret id=ca_bundle,src=/path/to/ca-bundle.crt ...
# Results leave the container through a mounted folder (-v "$PWD/results:/app/results"); W&B through a key
# passed at run time (-e WANDB_API_KEY), never baked in.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

# Where torch comes from: an extra index searched beside PyPI (empty: PyPI only), and the build it must be.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VARIANT=cpu
# Folders of wheels pip searches first, for offline builds (buildah: -v /dir/with/wheels:/wheels:ro and
# --build-arg PIP_FIND_LINKS=/wheels); empty: none.
ARG PIP_FIND_LINKS=""
# The commit the image was built from (the image has no .git): recorded in every run's meta.json.
ARG RLREPRO_COMMIT=""
ARG RLREPRO_DIRTY=""

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUJOCO_GL=egl \
    MPLCONFIGDIR=/tmp/matplotlib \
    VENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    REQUIREMENTS=requirements.txt

# MuJoCo's runtime libraries (EGL/OSMesa for rendering) and make, the entry point.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        make=4.3-4.1 libgl1=1.6.0-1 libegl1=1.6.0-1 libglfw3=3.3.8-1 libosmesa6=22.3.6-1+deb12u2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 rl && mkdir -p /app /opt/venv && chown rl:rl /app /opt/venv
USER 1000:1000
WORKDIR /app

# The same install step as CI (`make install`) without the test tools: pinned requirements first, for layer
# caching, then the check that the CPU image got the CPU build.
COPY --chown=rl:rl requirements.txt requirements-dev.txt pyproject.toml Makefile ./
COPY --chown=rl:rl replications ./replications
COPY --chown=rl:rl experiments ./experiments
COPY --chown=rl:rl analysis ./analysis
RUN --mount=type=secret,id=ca_bundle,uid=1000,required=false \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && if [ -n "${TORCH_INDEX_URL}" ]; then export PIP_EXTRA_INDEX_URL="${TORCH_INDEX_URL}"; fi \
    && if [ -z "${PIP_FIND_LINKS}" ]; then unset PIP_FIND_LINKS; fi \
    && make install \
    && /opt/venv/bin/python -c "import sys, torch; cuda = torch.version.cuda; print('torch', torch.__version__); \
sys.exit(f'${TORCH_VARIANT} image: torch {torch.__version__} is a CUDA {cuda} build; give TORCH_INDEX_URL a CPU wheel index' \
if '${TORCH_VARIANT}' == 'cpu' and cuda else 0)"
COPY --chown=rl:rl . .
ENV RLREPRO_COMMIT=${RLREPRO_COMMIT} \
    RLREPRO_DIRTY=${RLREPRO_DIRTY} \
    RLREPRO_IMAGE=rlrepro:${TORCH_VARIANT}

ENTRYPOINT ["make"]
CMD ["help"]
