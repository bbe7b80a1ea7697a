#!/bin/sh
# One-shot (service minio-init): create the artifact bucket once MinIO answers, and the two users the
# stack uses instead of the root credentials. Idempotent (re-running changes nothing).
# Artifacts live under s3://$RECSYS_S3_BUCKET/artifacts/, Airflow task logs under .../airflow-logs/.
#   recsys-read  (user $RECSYS_S3_READER_ACCESS_KEY): list and get; the API, the flusher, the exporter
#   recsys-write (user $RECSYS_S3_WRITER_ACCESS_KEY): list, get, put, delete; Airflow only
set -eu
mc alias set recsys http://minio:9000 "${MINIO_ROOT_USER}" "${MINIO_ROOT_PASSWORD}"
mc mb --ignore-existing "recsys/${RECSYS_S3_BUCKET}"

policy() {  # name, object actions (JSON list)
  cat > "/tmp/$1.json" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": ["arn:aws:s3:::${RECSYS_S3_BUCKET}"]},
  {"Effect": "Allow", "Action": $2, "Resource": ["arn:aws:s3:::${RECSYS_S3_BUCKET}/*"]}]}
JSON
  mc admin policy create recsys "$1" "/tmp/$1.json"
}

user() {  # access key, secret key, policy
  mc admin user add recsys "$1" "$2"
  if ! mc admin user info recsys "$1" | grep -q "$3"; then
    mc admin policy attach recsys "$3" --user "$1"
  fi
}

policy recsys-read '["s3:GetObject"]'
policy recsys-write '["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]'
user "${RECSYS_S3_READER_ACCESS_KEY}" "${RECSYS_S3_READER_SECRET_KEY}" recsys-read
user "${RECSYS_S3_WRITER_ACCESS_KEY}" "${RECSYS_S3_WRITER_SECRET_KEY}" recsys-write
echo "bucket ${RECSYS_S3_BUCKET} ready; users: ${RECSYS_S3_READER_ACCESS_KEY} (read), ${RECSYS_S3_WRITER_ACCESS_KEY} (write)"
