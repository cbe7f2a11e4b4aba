#!/usr/bin/env bash
# Build on a Spark cluster with Beam's portable runner.
#
# 1. A Beam Spark job server (its version matches apache-beam in constraints.txt):
#      docker run --net=host apache/beam_spark3_job_server:2.77.0 --spark-master-url=spark://SPARK_HOST:7077
# 2. Then:
#      IMAGE=registry/uvd/worker:0.1.0 infra/spark/run.sh --root s3://bucket/datasets --out s3://bucket/shards
set -euo pipefail
: "${IMAGE:?set IMAGE to the uvd worker image}"
uvd build "$@" \
  --runner=PortableRunner --job_endpoint="${JOB_ENDPOINT:-localhost:8099}" \
  --environment_type=DOCKER --environment_config="${IMAGE}"
