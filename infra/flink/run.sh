#!/usr/bin/env bash
# Build on a Flink cluster with Beam's portable runner.
#
# 1. A Beam Flink job server next to the cluster (its version matches apache-beam in constraints.txt):
#      docker run --net=host apache/beam_flink1.18_job_server:2.77.0 --flink-master=FLINK_HOST:8081
# 2. Then (IMAGE = the uvd worker image, every TaskManager host can pull it):
#      IMAGE=registry/uvd/worker:0.1.0 infra/flink/run.sh --root s3://bucket/datasets --out s3://bucket/shards
set -euo pipefail
: "${IMAGE:?set IMAGE to the uvd worker image}"
uvd build "$@" \
  --runner=PortableRunner --job_endpoint="${JOB_ENDPOINT:-localhost:8099}" \
  --environment_type=DOCKER --environment_config="${IMAGE}" \
  --parallelism="${PARALLELISM:-16}"
