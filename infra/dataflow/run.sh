#!/usr/bin/env bash
# Build UVDv1 shards on Google Cloud Dataflow.
#
#   PROJECT=my-proj REGION=us-central1 BUCKET=gs://my-bucket IMAGE=us-central1-docker.pkg.dev/my-proj/uvd/worker:0.1.0 \
#     infra/dataflow/run.sh --root gs://my-bucket/datasets --mix uvdv1
#
# Decoding runs on the default (CPU) workers; the tokenize step carries uvd's accelerator
# resource hint, so Dataflow's right fitting gives that step GPU workers (do not also set the
# worker_accelerator service option). Dataflow runs one SDK process per vCPU: one torch/OpenCV
# thread each. Waves are sized from the build (at most 18 jobs in all; `uvd plan`). Extra
# arguments go to `uvd build`; Beam options that uvd does not know pass through to Dataflow.
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}" "${IMAGE:?set IMAGE}"
OUT="${OUT:-${BUCKET}/uvd/shards}"

uvd build --out "${OUT}" --config "$(dirname "$0")/build.toml" \
  --accelerator "type:nvidia-l4;count:1;machine_type:g2-standard-8;install-nvidia-driver" \
  --threads-per-worker 1 \
  "$@" \
  --runner=DataflowRunner \
  --project="${PROJECT}" --region="${REGION}" \
  --temp_location="${BUCKET}/uvd/tmp" --staging_location="${BUCKET}/uvd/staging" \
  --sdk_container_image="${IMAGE}" --sdk_location=container \
  --experiments=use_runner_v2 \
  --machine_type=n2-standard-8 --disk_size_gb=100 \
  --max_num_workers="${MAX_WORKERS:-200}" \
  --job_name="uvd-build-$(date +%Y%m%d-%H%M%S)"
