#!/usr/bin/env bash
# Issue 3's GPU check: is the cpu recipe's held-out accuracy set by the seed or by the amount of
# training data? Four runs of the cpu recipe (EfficientNet-Lite0 from ImageNet, the 224 square
# around the chromosomes, 12 epochs), side by side on one GPU, each evaluated on the 1,000
# held-out pictures (seed 2) by benchmarks/train_accuracy.py:
#   seed0, seed2, seed3  the bundled model's 4,000 training pictures (synth seed 1), run seeds 0, 2, 3
#   data16000            those 4,000 plus 12,000 more (synth seed 3), run seed 0
#
#   benchmarks/gpu_seeds_and_data.sh [WORK_DIR] [RESULTS_DIR]
#
# Settings from the environment: PYTHON (python3), DEADLINE_S (seconds the whole script may
# take, 480; the runs are stopped in time to leave the results), N_SMALL (4000), N_MORE (12000),
# N_TEST (1000) and EPOCHS (the recipe's 12), smaller for a trial run; SYNTH_FORMAT (png; tif
# where imagecodecs is missing). Pictures already written in WORK_DIR are reused.
#
# Measured on one H100 machine (16 cores), TIFF: synth 4,000 pictures in 77 s and 12,000 in
# 230 s; the three 4,000-picture runs side by side took 2.4 min each (6-8 s per epoch). The
# 16,000-picture run needs about four times that: give it DEADLINE_S=900 or more, or a second
# call on the same machine (the pictures are reused).
#
# Needs the training extras; run from the repository root (src/ goes on PYTHONPATH). Each run's
# log is RESULTS_DIR/<run>.log; the model folders' reports are packed in
# RESULTS_DIR/reports.tar.gz, and the 16,000-picture model's weights are copied beside it.
set -u
work=${1:-/tmp/metasift_gpu}
results=${2:-gpu_results}
py=${PYTHON:-python3}
deadline=${DEADLINE_S:-480}
n_small=${N_SMALL:-4000}
n_more=${N_MORE:-12000}
n_test=${N_TEST:-1000}
epochs=${EPOCHS:+--epochs $EPOCHS}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$work" "$results"
t0=$SECONDS
say() { echo "[$((SECONDS - t0)) s] $*"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$py -c "import torch, timm, metasift; print('torch', torch.__version__, 'timm', timm.__version__,
'cuda', torch.cuda.is_available(), 'cores', __import__('os').cpu_count())" || exit 1

for spec in "train4000 $n_small 1" "test1000 $n_test 2" "more12000 $n_more 3"; do
    set -- $spec
    [ -f "$work/$1/labels.csv" ] && continue # written by an earlier call on the same machine
    start=$SECONDS
    $py -m metasift synth "$work/$1" --n "$2" --seed "$3" --workers "$(nproc)" \
        --format "${SYNTH_FORMAT:-png}" >/dev/null || exit 1
    say "synth $1: $2 pictures (seed $3) in $((SECONDS - start)) s"
done
# the 16,000-picture set as a manifest over both folders (absolute paths)
{
    echo "path,label"
    for d in train4000 more12000; do
        awk -F, -v d="$work/$d" 'NR > 1 { print d "/" $1 "," $2 }' "$work/$d/labels.csv"
    done
} >"$work/train16000.csv"

left=$((deadline - (SECONDS - t0) - 30)) # half a minute to pack the results
[ "$left" -gt 60 ] || { say "no time left to train (DEADLINE_S=$deadline)"; exit 1; }
say "four training runs side by side (each stopped after $left s)"
run() {
    local name=$1
    shift
    timeout "$left" $py benchmarks/train_accuracy.py --test "$work/test1000" --workers 8 $epochs \
        --out "$work/$name" "$@" 2>&1 | tr '\r' '\n' | grep -v ' img/s$' >"$results/$name.log"
    say "$name done"
}
run data16000 --train "$work/train16000.csv" --seed 0 &
run seed0 --train "$work/train4000" --seed 0 &
run seed2 --train "$work/train4000" --seed 2 &
run seed3 --train "$work/train4000" --seed 3 &
wait

for name in seed0 seed2 seed3 data16000; do
    echo "== $name"
    grep -E '^epoch .*val loss|^test split|^model folder|^training took|keep/reject accuracy|by true count' \
        "$results/$name.log" | grep -v '^epoch' || tail -3 "$results/$name.log"
    grep -c '^epoch .*val loss' "$results/$name.log" | sed 's/^/  epochs finished: /'
done
(cd "$work" && tar czf - --exclude='checkpoint.pt' --exclude='model.*' seed0 seed2 seed3 data16000) \
    >"$results/reports.tar.gz"
cp "$work/data16000/model.safetensors" "$work/data16000/model.onnx" "$results/" 2>/dev/null ||
    say "no 16,000-picture model to copy"
say "finished"
