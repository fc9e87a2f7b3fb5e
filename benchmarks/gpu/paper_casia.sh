#!/bin/bash
# The paper profile on a GPU: CASIA N = 5, leave-one-speaker-out, four folds at once, then its SRU
# ablation, within LIMIT seconds (a lease), saving the results store to $OUT/runs.tgz after each step.
#
# For a bare GPU machine that has torch but not serbench's audio packages, from the repo root:
#   .gpu/casia/  the CASIA release with every .wav as lossless FLAC (41 MB; the 73 MB of WAVs are
#                over the lent machine's 64 MB transfer; decode.py writes the WAVs back);
#   .whl/        cp312 manylinux wheels of soundfile, soxr, librosa, audioread, cffi, pycparser,
#                decorator, pooch and platformdirs (pip download --no-deps --only-binary=:all:).
#   OUT=... bash benchmarks/gpu/paper_casia.sh
# A CPU dry run: PY=.venv/bin/python DEV=cpu NB=1 W=2 T=1 SRC=<small FLAC copy> EXTRA="--cnn-epochs 1" ...
# SKIP_BENCH=1 / SKIP_SRU=1 leave those steps out. Results: recipes/jiang2019-notes.md, The `paper` profile on a GPU.
set -u
START=$(date +%s); LIMIT=${LIMIT:-570}
PY=${PY:-python3}; DEV=${DEV:-cuda}; PROFILE=${PROFILE:-paper}; W=${W:-4}; T=${T:-3}; NB=${NB:-40}
EXTRA=${EXTRA:-}
OUT=${OUT:-/tmp/gpuout}; WORK=${WORK:-/tmp/sb}; mkdir -p "$OUT" "$WORK"
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
save() { tar czf "$OUT/runs.tgz" -C "$WORK" runs 2>/dev/null; echo "[saved at $(( $(date +%s) - START )) s]"; }
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if [ "$DEV" = cuda ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
else
  export PYTHONPATH=$PWD
fi
$PY -c "import torch, numpy, sklearn, scipy, pandas, librosa, soundfile; print('torch', torch.__version__, 'numpy', numpy.__version__, 'sklearn', sklearn.__version__, 'librosa', librosa.__version__, 'cuda', torch.cuda.is_available())" || exit 4
$PY benchmarks/gpu/decode.py ${SRC:-.gpu/casia} "$WORK/casia" || exit 5
echo "== bench ($(left) s left)"
[ -z "${SKIP_BENCH:-}" ] && timeout 150 $PY benchmarks/gpu/bench.py "$OUT/bench.json" "$DEV" "$NB" || echo "bench failed or timed out"
SB="$PY benchmarks/gpu/sb.py"
COMMON="--corpus casia --root $WORK/casia --segments 5 --profile $PROFILE --device $DEV --cache $WORK/cache --runs $WORK/runs $EXTRA"
# Cap stage 1's epochs (the paper: up to 400, early stopping) only where 400 cannot finish in the time left:
# each of the W concurrent folds assumed to train at 40 % of the single-process rate, 4500 segments an epoch.
CAP=$($PY - "$OUT/bench.json" $(( $(left) - 120 )) <<'PYEOF'
import json, statistics, sys
try:
    rate = statistics.median(json.load(open(sys.argv[1]))["paper_cnn_segments_per_s"])
except Exception:
    rate = 0.0
avail = float(sys.argv[2])
epochs = int(avail * 0.4 * rate / (1200 * 0.75 * 0.9 * 5 * 1.1)) if rate else 0
print(f"--cnn-epochs {max(epochs, 10)}" if rate and epochs < 400 else "")
PYEOF
)
echo "== cnn-sru ($(left) s left) cap: ${CAP:-none}"
RESERVE=70; [ -n "${SKIP_SRU:-}" ] && RESERVE=12
timeout $(( $(left) - RESERVE )) $SB deep --model cnn-sru $COMMON $CAP --jobs 12 --workers $W --threads $T || echo "cnn-sru rc $?"
save
echo "== sru ablation ($(left) s left)"
[ -z "${SKIP_SRU:-}" ] && timeout $(( $(left) - 8 )) $SB deep --model sru $COMMON --workers $W --threads $T || echo "sru rc $?"
save
nvidia-smi --query-gpu=memory.used --format=csv 2>/dev/null
echo "== done at $(( $(date +%s) - START )) s"
