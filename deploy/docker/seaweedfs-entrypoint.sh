#!/bin/bash
# Entrypoint of Kitteh's SeaweedFS image: writes the S3 gateway's one identity, from the same
# KITTEH_S3_ACCESS_KEY_ID and KITTEH_S3_SECRET_ACCESS_KEY the services sign with, to the file
# `weed server -s3.config` reads, then runs the command, weed, as PID 1. With no identity at
# all SeaweedFS would accept anonymous requests: both are required.
set -euo pipefail
: "${KITTEH_S3_ACCESS_KEY_ID:?is required (the key Kitteh signs its S3 requests with)}"
: "${KITTEH_S3_SECRET_ACCESS_KEY:?is required (the secret of KITTEH_S3_ACCESS_KEY_ID)}"

json_string() {
    local text=${1//\\/\\\\}
    printf '"%s"' "${text//\"/\\\"}"
}

umask 077  # the secret is readable by this user only
printf '{"identities": [{"name": "kitteh", "credentials": [{"accessKey": %s, "secretKey": %s}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
    "$(json_string "$KITTEH_S3_ACCESS_KEY_ID")" "$(json_string "$KITTEH_S3_SECRET_ACCESS_KEY")" \
    > /tmp/s3.json
exec "$@"
