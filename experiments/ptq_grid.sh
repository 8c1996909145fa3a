#!/usr/bin/env bash
# Post-training quantization grid (issue 4): top-1 of each method at weights
# 2/3/4/8 bits (float activations), activations 2/3/4/8 bits (float weights)
# and joint 4/4, 3/3 (and 2/2), as markdown tables on stdout; every cell's
# JSON is kept in OUTDIR.
#
# usage: [METHODS="uniform-minmax weq ..."] experiments/ptq_grid.sh MODEL.onnx DATA [OUTDIR] [CALIB_IMAGES]
# e.g.   experiments/ptq_grid.sh resnet20-fmnist.onnx fashion-mnist out/ptq-resnet20 1000
set -euo pipefail
model=$1 data=$2 out=${3:-out/ptq} calib=${4:-1000}
lowbit=${LOWBIT:-lowbit}
mkdir -p "$out"

methods=("uniform-minmax:--method uniform --calib minmax --wcalib minmax"
         "uniform-pct:--method uniform --calib percentile --wcalib minmax"
         "uniform-mse:--method uniform --calib mse --wcalib mse"
         "uniform-kl:--method uniform --calib kl --wcalib minmax"
         "weq:--method weq"
         "olaq-r0.01:--method olaq --outlier-ratio 0.01"
         "olaq-r0.03:--method olaq --outlier-ratio 0.03")

# METHODS="uniform-minmax weq" restricts the rows to the named methods.
if [ -n "${METHODS:-}" ]; then
  keep=()
  for m in "${methods[@]}"; do [[ " $METHODS " == *" ${m%%:*} "* ]] && keep+=("$m"); done
  methods=("${keep[@]}")
fi

cell() { # name flags wbits abits -> prints top-1 (change vs float)
  local name=$1 flags=$2 w=$3 a=$4 f="$out/$1-w$3a$4.json"
  if [ ! -s "$f" ]; then
    $lowbit quantize --model "$model" --data "$data" $flags --wbits "$w" --abits "$a" \
      --calib-images "$calib" --float-eval "$out/fp32.eval.json" --json > "$f.tmp" 2>/dev/null && mv "$f.tmp" "$f"
  fi
  jq -r '"\(.top1*100*100|round/100) (\((.top1-.fp32_top1)*100*100|round/100))"' "$f"
}

table() { # title, then "W A" pairs
  local title=$1; shift
  local cols=("$@")
  echo; echo "#### $title"; echo
  printf '| method |'; for c in "${cols[@]}"; do set -- $c; printf ' %s/%s |' "${1/0/f}" "${2/0/f}"; done; echo
  printf '|---|'; for c in "${cols[@]}"; do printf -- '---|'; done; echo
  for m in "${methods[@]}"; do
    name=${m%%:*} flags=${m#*:}
    printf '| %s |' "$name"
    for c in "${cols[@]}"; do set -- $c; printf ' %s |' "$(cell "$name" "$flags" "$1" "$2")"; done
    echo
  done
}

# The float model is evaluated once; every cell takes its fp32_top1 from that file.
if [ ! -s "$out/fp32.eval.json" ]; then
  $lowbit eval --model "$model" --data "$data" --json > "$out/fp32.eval.json.tmp" && mv "$out/fp32.eval.json.tmp" "$out/fp32.eval.json"
fi
fp=$(jq -r '.top1*100*100|round/100' "$out/fp32.eval.json")
echo "Float model \`$model\` on $data: top-1 $fp %. Cells: quantized top-1 % (change vs float, points);"
echo "command per cell: \`lowbit quantize --model $model --data $data <method flags> --wbits W --abits A --calib-images $calib --json\`"
echo "(0 bits = float; method flags: ${methods[*]})."
table "Weights only (activations float)" "8 0" "4 0" "3 0" "2 0"
table "Activations only (weights float)" "0 8" "0 4" "0 3" "0 2"
table "Joint weights/activations" "8 8" "4 4" "3 3" "2 2"
