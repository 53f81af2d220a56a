#!/usr/bin/env bash
# Run every benchmark of bench/ (each framework in its own fresh processes, in alternation)
# and print the tables that bench/RESULTS.md records. Needs torch==2.13.0 and jax in this
# Python for the peers:  pip install torch==2.13.0 jax jaxlib
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
$PY -m compileall -q ../tapegrad
date -u +"%Y-%m-%d %H:%M UTC"
$PY op_chain.py --rounds 3
$PY scalar_function.py --rounds 3
$PY import_time.py --rounds 9
$PY mlp_step.py --batch 64 --rounds 3
$PY mlp_step.py --batch 512 --rounds 3
$PY seed_training.py --rounds 3
$PY seed_training.py --cold --framework=tapegrad,tapegrad_function,torch
$PY optimizer_update.py --rounds 9
$PY rnn_step.py --rounds 3
$PY rnn_step.py --cell gru --rounds 3
$PY rnn_step.py --compile-time --steps 100
$PY attention_step.py --rounds 3
