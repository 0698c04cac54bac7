#!/usr/bin/env bash
# Voiceapp one-click launcher (Linux/macOS).
#   ./launch.sh            create .venv when missing, install the pinned requirements, start the app
#   ./launch.sh test       the same install (+ test extras), then run the whole test suite
#   ./launch.sh [app args] e.g. ./launch.sh --port 7861 --share
# Environment: PYTHON (interpreter for the venv, default python3), VOICEAPP_TORCH_INDEX (a PyTorch
# wheel index URL, e.g. https://download.pytorch.org/whl/cpu for a smaller CPU-only install).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=".venv"
MODE="app"
if [ "${1:-}" = "test" ]; then MODE="test"; shift; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[voiceapp] creating $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

files="requirements.txt requirements-nodeps.txt"
[ "$MODE" = "test" ] && files="$files requirements-test.txt"
stamp_file="$VENV/.voiceapp-$MODE.stamp"
stamp="$(cat $files | "$PY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')-${VOICEAPP_TORCH_INDEX:-pypi}"
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp" ]; then
  echo "[voiceapp] installing requirements (first run or requirements changed)"
  "$PY" -m pip install --quiet --upgrade pip
  if [ -n "${VOICEAPP_TORCH_INDEX:-}" ]; then
    "$PY" -m pip install --quiet "$(grep '^torch==' requirements.txt)" --index-url "$VOICEAPP_TORCH_INDEX"
  fi
  "$PY" -m pip install --quiet -r requirements.txt
  "$PY" -m pip install --quiet --no-deps -r requirements-nodeps.txt
  if [ "$MODE" = "test" ]; then "$PY" -m pip install --quiet -r requirements-test.txt; fi
  echo "$stamp" > "$stamp_file"
fi

if [ "$MODE" = "test" ]; then
  exec "$PY" -m pytest tests "$@"
fi
exec "$PY" app.py "$@"
