#!/usr/bin/env bash
# make docker-check: build the CPU image and run it as a user would, checking what comes out.
#
#   1. Engine: docker where its engine answers, else buildah (as root; vfs storage, chroot isolation).
#   2. Base: the Dockerfile's registry base where it can be pulled, else a stand-in made here from Debian's
#      packages (debootstrap bookworm with Python 3.11, laid out as the slim image is).
#   3. Build: the CPU torch wheel from a local folder where one is at hand (buildah only: TORCH_WHEEL_DIR, or
#      the folder pip's find-links names), else PyTorch's CPU index (the Dockerfile's default); pip's CA
#      bundle, where this machine has one, as the ca_bundle build secret.
#   4. Inside the image, as its non-root user, with results/ and an output folder mounted:
#      `make replicate-ppo BUDGET=quick` over a copy of the committed runs (nothing left to run: it regenerates
#      the report), one short training run of ours and one of SB3, and `rlrepro report` into the mounted
#      folder; then the files that came out are checked.
# Settings (environment): IMAGE (rlrepro:cpu), TORCH_WHEEL_DIR, CA_BUNDLE, DOCKER_CHECK_WORK (a scratch folder).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-rlrepro:cpu}
STANDIN=localhost/rlrepro-standin-base:bookworm
SLIM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORK=${DOCKER_CHECK_WORK:-/var/tmp/rlrepro-docker-check}
START=$(date +%s)

say() { printf '[docker-check %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() {
  printf 'docker-check: %s\n' "$*" >&2
  exit 1
}

# 1. the engine
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ENGINE=docker
elif command -v buildah >/dev/null 2>&1; then
  ENGINE=buildah
  [ "$(id -u)" = 0 ] || die "buildah here needs root (no rootless set-up is assumed); run as root or use docker"
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
else
  die "needs docker with a running engine, or buildah (Debian: apt-get install buildah debootstrap)"
fi
say "engine: $ENGINE"
mkdir -p "$WORK"

# 2. the base image
BASE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
if $ENGINE pull -q "$BASE" >/dev/null 2>&1; then
  say "base: $BASE (pulled)"
else
  say "base: $BASE cannot be pulled here; building the Debian stand-in $STANDIN"
  command -v debootstrap >/dev/null 2>&1 || die "the stand-in base needs debootstrap (apt-get install debootstrap)"
  ROOTFS=$WORK/rootfs-bookworm
  if [ ! -x "$ROOTFS/usr/bin/python3.11" ]; then
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,passwd,ca-certificates \
      bookworm "$ROOTFS" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $WORK/debootstrap.log"
  fi
  # as the slim image has it: Python 3.11 on /usr/local/bin, bookworm with its updates and security suites
  ln -sf /usr/bin/python3.11 "$ROOTFS/usr/local/bin/python3.11"
  ln -sf /usr/bin/python3.11 "$ROOTFS/usr/local/bin/python3"
  rm -f "$ROOTFS/etc/apt/sources.list"
  cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  if [ "$ENGINE" = docker ]; then
    tar -C "$ROOTFS" -c . | docker import --change "ENV PATH=$SLIM_PATH" --change "ENV LANG=C.UTF-8" - "$STANDIN" >/dev/null
  else
    buildah rmi -f "$STANDIN" >/dev/null 2>&1 || true
    ctr=$(buildah from scratch)
    tar -C "$ROOTFS" -c . | tar -C "$(buildah mount "$ctr")" -x
    buildah umount "$ctr" >/dev/null
    buildah config --env "PATH=$SLIM_PATH" --env LANG=C.UTF-8 --cmd python3 "$ctr"
    buildah commit -q --rm "$ctr" "$STANDIN" >/dev/null
  fi
  BASE=$STANDIN
fi

# 3. the build
commit=$(git rev-parse HEAD 2>/dev/null || echo "")
dirty=$([ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo 1 || echo 0)
args=(--build-arg "BASE_IMAGE=$BASE" --build-arg "RLREPRO_COMMIT=$commit" --build-arg "RLREPRO_DIRTY=$dirty")
CA_BUNDLE=${CA_BUNDLE:-${PIP_CERT:-}}
if [ -z "$CA_BUNDLE" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt; fi
if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then
  args+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
  say "pip's CA bundle: $CA_BUNDLE (build secret)"
fi
if [ "$ENGINE" = buildah ]; then
  if [ -z "${TORCH_WHEEL_DIR:-}" ]; then
    for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
      if compgen -G "$dir/torch-2.13.0+cpu-*.whl" >/dev/null; then
        TORCH_WHEEL_DIR=$dir
        break
      fi
    done
  fi
  if [ -n "${TORCH_WHEEL_DIR:-}" ]; then
    args+=(--volume "$TORCH_WHEEL_DIR:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels --build-arg TORCH_INDEX_URL=)
    say "torch: the CPU wheel in $TORCH_WHEEL_DIR"
  fi
  build=(buildah bud --layers --format docker)
else
  build=(docker build)
fi
say "building $IMAGE (minutes; the log: $WORK/build.log)"
"${build[@]}" "${args[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 || {
  tail -30 "$WORK/build.log" >&2
  die "the image did not build; the whole log is $WORK/build.log"
}
size=$($ENGINE images --format '{{.Size}}' "$IMAGE" 2>/dev/null | head -1)
say "built $IMAGE (${size:-size unknown}; $(grep -m1 -o '^torch [0-9.]*+*[a-z0-9]*' "$WORK/build.log" || echo 'torch version not printed'))"

# 4. run it. `in_image ARGS...` runs make (the entry point) with ARGS; `in_image_sh CMD` runs a shell command;
# both as the image's own user, with $WORK/results on /app/results, $WORK/reports on /app/reports, $WORK/out on /out.
RESULTS=$WORK/results
REPORTS=$WORK/reports
OUT=$WORK/out
rm -rf "$RESULTS" "$REPORTS" "$OUT"
mkdir -p "$REPORTS" "$OUT"
cp -r results "$RESULTS"
chown -R 1000:1000 "$RESULTS" "$REPORTS" "$OUT" 2>/dev/null || chmod -R a+rwX "$RESULTS" "$REPORTS" "$OUT"
mounts=(-v "$RESULTS:/app/results" -v "$REPORTS:/app/reports" -v "$OUT:/out")
if [ "$ENGINE" = docker ]; then
  in_image() { docker run --rm "${mounts[@]}" "$IMAGE" "$@"; }
  in_image_sh() { docker run --rm "${mounts[@]}" --entrypoint sh "$IMAGE" -c "$1"; }
else
  ctr=$(buildah from "$IMAGE")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  in_image() { buildah run "${mounts[@]}" "$ctr" -- make "$@"; }
  in_image_sh() { buildah run "${mounts[@]}" "$ctr" -- sh -c "$1"; }
fi

say "inside: user, torch build, and what the image holds"
facts=$(in_image_sh 'id -u; /opt/venv/bin/python -c "import torch; print(torch.__version__, torch.version.cuda)"; \
  ls -A /app; /opt/venv/bin/pip list 2>/dev/null | grep -ci nvidia || true')
echo "$facts" | sed 's/^/    /'
[ "$(echo "$facts" | sed -n 1p)" = 1000 ] || die "the image runs as uid $(echo "$facts" | sed -n 1p), not the non-root user 1000"
echo "$facts" | sed -n 2p | grep -q '+cpu None$' || die "the CPU image's torch is not the CPU build: $(echo "$facts" | sed -n 2p)"
[ "$(echo "$facts" | tail -1)" = 0 ] || die "NVIDIA packages in the CPU image"
for unwanted in .git .venv tests .pytest_cache wandb; do
  if echo "$facts" | grep -qx "$unwanted"; then die "the image holds /app/$unwanted, which it does not need"; fi
done

say "inside: make replicate-ppo BUDGET=quick (committed runs: regenerates the report)"
in_image replicate-ppo BUDGET=quick WORKERS=1 2>&1 | tee "$WORK/replicate.log" | tail -5
grep -q "0 to run" "$WORK/replicate.log" || die "replicate-ppo BUDGET=quick ran runs it should have found complete"
[ -s "$REPORTS/ppo-quick/summary.md" ] || die "replicate-ppo BUDGET=quick wrote no reports/ppo-quick/summary.md"

say "inside: one short training run of ours (PPO, Hopper-v5) and one of SB3 (PPO, CartPole-v1)"
in_image_sh 'rlrepro train ppo Hopper-v5 --steps 4096 --seed 900 --out /out/results' | tail -2
in_image_sh 'rlrepro train ppo CartPole-v1 --impl sb3 --steps 2048 --seed 900 --out /out/results' | tail -2
for run in "$OUT"/results/runs/ppo/Hopper-v5/ours/seed900-* "$OUT"/results/runs/ppo/CartPole-v1/sb3/seed900-*; do
  [ -d "$run" ] || die "the short training runs left no run folder under $OUT/results/runs/ppo"
  python3 - "$run" "$commit" <<'EOF' || die "$run: not a complete run with the image's provenance"
import json, sys
from pathlib import Path
run, commit = Path(sys.argv[1]), sys.argv[2]
meta = json.loads((run / "meta.json").read_text())
assert meta["status"] == "complete" and meta["steps"] > 0, meta
assert meta.get("image") == "rlrepro:cpu", meta.get("image")
assert not commit or meta.get("commit") == commit, (meta.get("commit"), commit)
assert (run / "episodes.csv").stat().st_size > 0
print(f"    {run.parent.parent.name}/{run.parent.name}/{run.name}: {meta['steps']} steps, commit {meta['commit']}")
EOF
done

say "inside: rlrepro report ppo --budget quick into the mounted /out/reports"
in_image_sh 'rlrepro report ppo --budget quick --reports /out/reports' | tail -3
for f in summary.md status.json; do
  [ -s "$OUT/reports/ppo-quick/$f" ] || die "rlrepro report wrote no reports/ppo-quick/$f into the mounted folder"
done
ls "$OUT"/reports/ppo-quick/*.png >/dev/null 2>&1 || die "rlrepro report wrote no figure into the mounted folder"
grep -q "CartPole-v1" "$OUT/reports/ppo-quick/summary.md" || die "the report's summary names no CartPole-v1 row"

say "passed: $IMAGE builds from $BASE and runs replicate, train (ours and SB3) and report as uid 1000"
