#!/usr/bin/env bash
# Do two checkouts train alike? For a change meant to keep behaviour (a restructuring), train five
# small configurations in each tree on one simulated data set and compare every history.csv and
# metrics.json byte for byte.
#
#   benchmarks/same_results.sh BEFORE_TREE AFTER_TREE [WORK_DIR]      (about 8 minutes on 2 cores)
#
# The configurations cover the in-memory and streamed paths, a repeated small training part
# (--min_epoch_steps), L1/L2 penalties, the deterministic network (--latent_dim=0), the lab frame,
# the encoder-means prior, the plain CVAE objective, --center=com, energy selection and no
# recalibration. Prints one line per file, "same" or "DIFF", and exits 1 if any differs.
set -euo pipefail
before=$(cd "$1" && pwd) after=$(cd "$2" && pwd)
work=${3:-$(mktemp -d)}
python=${PYTHON:-python3}
mkdir -p "$work"
data="$work/events.csv"
(cd "$before" && "$python" -m cvae_tf.simulate --num_events=4000 --seed=3 \
  --zero_point_momentum_spread=2 --output="$data" --overwrite > /dev/null)

train() {  # tree, output folder, run name, extra flags...
  local tree=$1 out=$2 name=$3
  shift 3
  (cd "$tree" && "$python" -m cvae_tf.train --data="$data" --output_dir="$out" --run_name="$name" \
    --overwrite --epochs=6 --hidden_dim=16 --num_layers=2 --num_display_samples=1 "$@" \
    > "$out/$name.log" 2>&1)
}

status=0
for side in before after; do
  tree=$([ "$side" = before ] && echo "$before" || echo "$after")
  out="$work/$side"
  mkdir -p "$out"
  train "$tree" "$out" plain
  train "$tree" "$out" reg --l1=1e-5 --l2=1e-4
  train "$tree" "$out" det --latent_dim=0
  train "$tree" "$out" stream --data_loading=stream --latent_prior=encoder_means --frame=lab
  train "$tree" "$out" std --prior_weight=0 --nll_beta=0 --center=com --select=energy \
    --norecalibrate
done
for name in plain reg det stream std; do
  for file in history.csv metrics.json; do
    # metrics.json names the data file; that line is the same path on both sides.
    if cmp -s "$work/before/$name/$file" "$work/after/$name/$file"; then
      echo "same $name/$file"
    else
      echo "DIFF $name/$file"
      status=1
    fi
  done
done
exit $status
