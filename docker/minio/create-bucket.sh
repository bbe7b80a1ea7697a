#!/bin/sh
# One-shot (service minio-init): create the artifact bucket once MinIO answers. Idempotent.
# Artifacts live under s3://$RECSYS_S3_BUCKET/artifacts/, Airflow task logs under .../airflow-logs/.
set -eu
mc alias set recsys http://minio:9000 "${MINIO_ROOT_USER}" "${MINIO_ROOT_PASSWORD}"
mc mb --ignore-existing "recsys/${RECSYS_S3_BUCKET}"
echo "bucket ${RECSYS_S3_BUCKET} ready"
