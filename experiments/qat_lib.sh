# Shared settings and helpers of the quantization-aware training experiments
# (sourced by the other qat_*.sh scripts). Every run writes OUT/NAME.json (the
# command's --json output), OUT/NAME.log (its progress on stderr),
# OUT/NAME.cmd (the exact command) and OUT/NAME.onnx. A run whose JSON exists
# is skipped, and an interrupted fine-tuning run is resumed (--resume), so a
# script can be re-run after Ctrl-C.
#
# Environment:
#   DATA          dataset (default fashion-mnist)
#   OUT           output directory (default experiments/out, or
#                 experiments/out-smoke with SMOKE=1)
#   LOWBIT        lowbit binary (default: built from this checkout into OUT)
#   FLOAT_EPOCHS  epochs of the float models
#   QAT_EPOCHS    epochs of each fine-tuning phase
#   BN_LAST       epochs of each BN-last phase
#   LIMIT         training images (empty: all 60,000)
#   TEST          test images (empty: all 10,000)
#   DUQ_INIT      DuQ initialization of the MobileNet scripts: mse (default) or
#                 p95 (methods.md); BN_REEST  BatchNorm re-estimation batches
#                 after every epoch (default 100; 0 = off). Runs with the
#                 defaults get the name suffix -mse-bnre (see tune_args).
#   SMOKE=1       tiny settings (1 float epoch, 1 epoch per phase, 2,000
#                 training and 1,000 test images) to check that a script runs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA:-fashion-mnist}
if [[ ${SMOKE:-0} == 1 ]]; then
	OUT=${OUT:-$ROOT/experiments/out-smoke}
	FLOAT_EPOCHS=${FLOAT_EPOCHS:-1}
	QAT_EPOCHS=${QAT_EPOCHS:-1}
	BN_LAST=${BN_LAST:-1}
	LIMIT=${LIMIT:-2000}
	TEST=${TEST:-1000}
fi
OUT=${OUT:-$ROOT/experiments/out}
LIMIT=${LIMIT:-}
TEST=${TEST:-}
mkdir -p "$OUT"
LOWBIT=${LOWBIT:-$OUT/lowbit}
if [[ ! -x $LOWBIT || ${REBUILD:-0} == 1 ]]; then
	(cd "$ROOT" && go build -o "$LOWBIT" ./cmd/lowbit)
fi

# tune_args / tune_sfx: the --duq-init/--bn-reestimate flags of DUQ_INIT
# and BN_REEST, and the run-name suffix that records them.
DUQ_INIT=${DUQ_INIT:-mse}
BN_REEST=${BN_REEST:-100}
tune_args=(--duq-init "$DUQ_INIT" --bn-reestimate "$BN_REEST")
tune_sfx=
[[ $DUQ_INIT == mse ]] && tune_sfx+=-mse
[[ $BN_REEST != 0 ]] && tune_sfx+=-bnre

# run NAME ARGS...: lowbit ARGS --json, unless OUT/NAME.json exists.
run() {
	local name=$1
	shift
	if [[ -s $OUT/$name.json ]]; then
		echo "== $name: done ($OUT/$name.json)"
		return
	fi
	echo "lowbit $*" >"$OUT/$name.cmd"
	echo "== $name: lowbit $*"
	local start=$SECONDS
	"$LOWBIT" "$@" --json >"$OUT/$name.json.tmp" 2> >(tee "$OUT/$name.log" >&2)
	mv "$OUT/$name.json.tmp" "$OUT/$name.json"
	echo "== $name: $((SECONDS - start)) s"
}

# float NAME MODEL [ARGS...]: trains a float zoo model into OUT/NAME.onnx.
float() {
	local name=$1 model=$2
	shift 2
	run "$name" train --model "$model" --data "$DATA" --epochs "$FLOAT_EPOCHS" \
		${LIMIT:+--limit "$LIMIT"} --out "$OUT/$name.onnx" "$@"
}

# ft NAME FLOAT [ARGS...]: fine-tunes OUT/FLOAT.onnx into OUT/NAME.onnx
# (resuming an interrupted run).
ft() {
	local name=$1 fp=$2
	shift 2
	local resume=()
	if [[ -f $OUT/$name.onnx.qat ]]; then
		resume=(--resume)
	fi
	run "$name" finetune --model "$OUT/$fp.onnx" --data "$DATA" ${LIMIT:+--limit "$LIMIT"} \
		${TEST:+--test-images "$TEST"} --out "$OUT/$name.onnx" "${resume[@]}" "$@"
}

# summary PREFIX...: prints the table of the runs whose names start with
# one of the prefixes and writes OUT/summary-<first prefix>.json (and an SVG
# of the residual-stream errors when the runs measured them).
summary() {
	python3 "$ROOT/experiments/summarize.py" "$OUT" "$@"
}
