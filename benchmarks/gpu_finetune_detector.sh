#!/usr/bin/env bash
# A GPU lease's fine-tuning of the chromosome detector: the CPU recipe's stage-5 models
# (examples/make_default_detector.py) trained on for as long as the lease allows, with far more
# synthetic pictures and crops than a CPU can draw, two runs side by side on one GPU:
#   A    from the fold-A model (mfish-dev V13, V16, V24, V28 and giemsa-dev 1, 3, 5, 7 never
#        read): its held-out figures say whether the longer training helps;
#   all  from the bundled model (every real picture but the validation slides V18, V27): the
#        candidate to bundle if A measures better than its start.
# Each run: stage 5's settings (bodies width, zoom 0.4, debris weight 20), the weights' moving
# average, the epoch of the lowest validation loss kept; the crops drawn by forked workers.
# Nothing is measured here: export, decoding search (retune_decoding) and the benchmarks run on
# the CPU afterwards, on the model.safetensors files this leaves in RESULTS_DIR.
#
#   benchmarks/gpu_finetune_detector.sh REAL_DIR INIT_A [RESULTS_DIR]
#
# REAL_DIR holds mfish-dev/ and giemsa-dev/; INIT_A the fold-A model folder (config.json and
# model.safetensors); "default" stands for the bundled one. Environment: PYTHON (python3),
# DEADLINE_S (seconds the whole script may take, 560), N_TRAIN (synthetic pictures per stain,
# 1000), EPOCHS (30), STEPS (200), BATCH (32), LR (2e-4), DECAY (0.92), WORKERS (crop and
# preparation processes per run: half the cores less one), DEVICE (cuda).
# The machine needs metasift's dependencies importable by PYTHON; a GPU image without
# imagecodecs (the synthesiser's PNG and JPEG coder) needs its wheel carried and installed first
# (the one lease so far had no room for the 26 MB wheel beside the real sets in its 64 MiB
# transfer and used a small module coding PNG and JPEG with Pillow instead, tifffile's own
# codecs for the rest: its synthetic pictures' JPEG artefacts came from Pillow's coder).
# Measured once (an H200, 16 cores, the defaults): 9 epochs in the time, about 160 crops/s per
# run; fold A held out counted worse than its start (README, benchmark.json gpu_finetune_A).
# That run drew its DAPI pictures before their bands were made coarse (e409a93): a rerun
# trains on other DAPI pictures.
# Smoke test on a CPU: N_TRAIN=6 EPOCHS=2 STEPS=2 BATCH=2 DEVICE=cpu DEADLINE_S=300 \
#   benchmarks/gpu_finetune_detector.sh ../shared/data build/detector_zoom_A /tmp/ft_results
set -u
real=${1:?REAL_DIR with mfish-dev/ and giemsa-dev/}
init_a=${2:?INIT_A: the fold-A detector folder}
results=${3:-gpu_results}
py=${PYTHON:-python3}
deadline=${DEADLINE_S:-560}
n=${N_TRAIN:-1000}
workers=${WORKERS:-$(($(nproc) / 2 - 1))}
[ "$workers" -ge 1 ] || workers=1
work=$(mktemp -d)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$results"
t0=$SECONDS
say() { echo "[$((SECONDS - t0)) s] $*"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$py -c "import torch, timm, metasift; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1

for spec in "train_dapi $n 5000 dapi" "train_giemsa $n 5001 giemsa" "val_dapi 16 5002 dapi" \
    "val_giemsa 16 5003 giemsa"; do
    set -- $spec
    $py -m metasift synth "$work/$1" --n "$2" --seed "$3" --style dca --randomise --masks \
        --stain "$4" --workers "$(nproc)" >/dev/null || exit 1
    say "synth $1: $2 pictures"
done

held="images/1.png,images/3.png,images/5.png,images/7.png"
left=$((deadline - (SECONDS - t0) - 20)) # time to copy the results out
[ "$left" -gt 60 ] || { say "no time left to train"; exit 1; }
say "training both runs for at most $left s, $workers workers each"
data=("$work"/train_dapi "$work"/train_giemsa "$work"/val_dapi "$work"/val_giemsa
    "$real/mfish-dev" "$real/giemsa-dev")
settings=(--val-slides V18,V27 --width bodies --ema 0.998 --debris-weight 20 --zoom 0.4
    --epochs "${EPOCHS:-30}" --steps "${STEPS:-200}" --batch-size "${BATCH:-32}"
    --lr "${LR:-2e-4}" --lr-decay "${DECAY:-0.92}" --device "${DEVICE:-cuda}" --workers "$workers")
timeout "$left" $py -m metasift train-detector "${data[@]}" "${settings[@]}" \
    --test-slides "V13,V16,V24,V28,$held" --init "$init_a" --out "$work/A" \
    >"$results/A_train.log" 2>&1 &
timeout "$left" $py -m metasift train-detector "${data[@]}" "${settings[@]}" \
    --init default --out "$work/all" >"$results/all_train.log" 2>&1 &
wait
for run in A all; do
    say "$run: $(grep -c '^epoch' "$results/${run}_train.log") epochs"
    for f in model.safetensors history.csv config.yaml; do
        [ -f "$work/$run/$f" ] && cp "$work/$run/$f" "$results/${run}_$f"
    done
done
say "done: $(ls "$results")"
