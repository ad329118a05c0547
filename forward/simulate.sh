#!/usr/bin/env bash
# Simulate the spike bank for source regions START..END-1 (the seed's `simulate.sh START END`).
#
#   forward/simulate.sh START END [extra `lightbunny simulate` options]
#
# A thin wrapper over `lightbunny simulate`; all logic lives in lightbunny.simulate. Defaults
# (override through the environment):
#   ATLAS=fsaverage994  DATA_DIR=$LIGHTBUNNY_DATA  OUT=source/spikes_${ATLAS}.h5
#   DURATION=20  BACKEND=torch  DEVICE=cpu  BATCH_SIZE=32
#   LIGHTBUNNY (command to run, default `lightbunny`, else $PYTHON -m lightbunny.cli)
# Re-running the same command resumes an interrupted run (complete regions are skipped).
# On a terminal the script asks for confirmation first; when not on one it just runs.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 START END [lightbunny simulate options...]" >&2
    exit 2
fi
START=$1
END=$2
shift 2

ATLAS=${ATLAS:-fsaverage994}
OUT=${OUT:-source/spikes_${ATLAS}.h5}
DURATION=${DURATION:-20}
BACKEND=${BACKEND:-torch}
DEVICE=${DEVICE:-cpu}
BATCH_SIZE=${BATCH_SIZE:-32}
DATA_ARGS=()
if [[ -n "${DATA_DIR:-${LIGHTBUNNY_DATA:-}}" ]]; then
    DATA_ARGS=(--data-dir "${DATA_DIR:-$LIGHTBUNNY_DATA}")
fi

if [[ -t 0 && -t 1 ]]; then
    read -r -p "Simulate ${ATLAS} regions ${START}..$((END - 1)) (${DURATION} s each, ${BACKEND} on ${DEVICE}) into ${OUT}? [y/N] " answer
    [[ "${answer}" == [yY]* ]] || { echo "aborted"; exit 1; }
fi

# the command to run: $LIGHTBUNNY if set, else `lightbunny` on the PATH, else $PYTHON -m lightbunny.cli
if [[ -z "${LIGHTBUNNY:-}" ]]; then
    if command -v lightbunny >/dev/null 2>&1; then
        LIGHTBUNNY=lightbunny
    else
        LIGHTBUNNY="${PYTHON:-python3} -m lightbunny.cli"
    fi
fi
exec ${LIGHTBUNNY} simulate --atlas "${ATLAS}" "${DATA_ARGS[@]}" --regions "${START}:${END}" \
    --duration "${DURATION}" --backend "${BACKEND}" --device "${DEVICE}" \
    --batch-size "${BATCH_SIZE}" --out "${OUT}" "$@"
