#!/usr/bin/env bash
# Issue 3's GPU check: the reference paper's recipe (Inception v3, 299x299, Adam 0.9/0.999,
# batch 32, 20 epochs, learning rate 0.001 x 0.9 per epoch, the epoch of lowest validation loss)
# on 16,000 synthetic pictures (seed 1), then evaluated on 1,000 held-out pictures (seed 2, the
# same pictures as the CPU benchmarks' test set). Prints the time of each step and the accuracy.
#
#   benchmarks/gpu_paper_recipe.sh [WORK_DIR] [RESULTS_DIR]
#
# Settings from the environment: N_TRAIN (16000), N_TEST (1000), EPOCHS (20), PYTHON (python3),
# DEADLINE_S (seconds the whole script may take; training stops early to leave time to report).
# Needs metasift's training extras; run from the repository root (src/ goes on PYTHONPATH).
# ImageNet weights for Inception v3 are used when torchvision's cache holds them; a machine
# without network access and without that file trains from scratch (said in the output).
set -u
work=${1:-/tmp/metasift_gpu}
results=${2:-gpu_results}
n_train=${N_TRAIN:-16000}
n_test=${N_TEST:-1000}
epochs=${EPOCHS:-20}
py=${PYTHON:-python3}
deadline=${DEADLINE_S:-3600}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$work" "$results"
t0=$SECONDS
say() { echo "[$((SECONDS - t0)) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$py -c "import torch, timm, metasift; print('torch', torch.__version__, 'timm', timm.__version__,
'cuda', torch.cuda.is_available(), 'cores', __import__('os').cpu_count())" || exit 1
hub=$($py -c "import torch; print(torch.hub.get_dir())")
if ls "$hub"/checkpoints/inception_v3_google-*.pth >/dev/null 2>&1; then
    pretrained=imagenet
else
    pretrained=none
    say "no Inception v3 ImageNet weights in $hub/checkpoints: training from scratch"
fi

cores=$(nproc)
for spec in "train $n_train 1" "test $n_test 2"; do
    set -- $spec
    if [ ! -f "$work/$1/labels.csv" ]; then
        start=$SECONDS
        $py -m metasift synth "$work/$1" --n "$2" --seed "$3" --format tif --workers "$cores" \
            >/dev/null || exit 1
        say "synth $1: $2 pictures in $((SECONDS - start)) s"
    fi
done

left=$((deadline - (SECONDS - t0) - 60)) # a minute for the evaluation and the copies
[ "$left" -gt 60 ] || { say "no time left to train (DEADLINE_S=$deadline)"; exit 1; }
say "training, paper recipe, pretrained=$pretrained, $epochs epochs (at most $left s)"
start=$SECONDS
timeout "$left" $py benchmarks/train_accuracy.py --train "$work/train" --test "$work/test" \
    --recipe paper --epochs "$epochs" --pretrained "$pretrained" --out "$work/inception" \
    2>&1 | tr '\r' '\n' | grep -v '^epoch .*img/s$' | tee "$results/train_log.txt"
say "training and evaluation took $((SECONDS - start)) s"
for f in history.csv curves.png config.json thresholds.json evaluation.json; do
    cp "$work/inception/$f" "$results/" 2>/dev/null || say "no $f"
done
[ -f "$work/inception/history.csv" ] || exit 1
$py - "$work/inception/history.csv" "$n_train" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rate = sorted(float(r["images_per_s"]) for r in rows)[len(rows) // 2]
print(f"{len(rows)} epochs, median {rate:.0f} training images/s (validation included); "
      f"the paper's 16,400 pictures x 20 epochs would take {16400 * 20 / rate / 60:.1f} min")
EOF
