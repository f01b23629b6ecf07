#!/usr/bin/env bash
# Installs SecantusDB (a MongoDB-wire-compatible server, PyPI) into .ci/.venv-secantus for the
# MongoDB store tests and benchmarks. Idempotent: does nothing when it is already there.
# The tests find it at .ci/.venv-secantus/bin/secantusd-py (or $FOOTFALL_SECANTUSD).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-secantus"
if [ ! -x "$venv/bin/python3" ]; then
    python3 -m venv "$venv"
fi
if [ ! -x "$venv/bin/secantusd-py" ]; then
    # A pre-release: --pre and an exact pin, so every run gets the same server.
    "$venv/bin/pip" install -q --pre 'secantusdb==0.7.0b3'
fi
echo "secantusd-py: $venv/bin/secantusd-py"
