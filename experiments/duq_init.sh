#!/usr/bin/env bash
# Test top-1 of a float model right after DuQ quantizers are placed and initialized (before any
# fine-tuning), for the two initializations of `lowbit finetune --duq-init` (p95 = methods.md §6,
# mse = MSE-optimal activation clip at each quantizer's bit width) and several widths.
#
#   experiments/duq_init.sh FLOAT.onnx [DATA] [TEST_IMAGES]
#
# Prints a Markdown table. Each cell is the "before fine-tuning" top-1 of a finetune run whose
# single training batch (--limit 64, one epoch) is never evaluated; the precision highway is on,
# as in the MobileNet recipes. Set LOWBIT to a built binary (default: go run).
set -euo pipefail
model=${1:?usage: duq_init.sh FLOAT.onnx [DATA] [TEST_IMAGES]}
data=${2:-fashion-mnist}
test=${3:-2000}
lowbit=${LOWBIT:-"go run ./cmd/lowbit"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
before() {
	$lowbit finetune --model "$model" --data "$data" --limit 64 --test-images "$test" --method duq \
		--highway --epochs 1 --out "$tmp/q.onnx" --json "$@" 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f %.2f" % (100*d["init_top1"], 100*d["fp32_top1"]))'
}
echo "| weights / activations | float | p95 (methods.md) | mse |"
echo "| --- | ---: | ---: | ---: |"
for wa in "0 5" "0 4" "4 0" "5 4" "4 4" "3 3"; do
	set -- $wa
	read -r p fp < <(before --wbits "$1" --abits "$2" --duq-init p95)
	read -r m _ < <(before --wbits "$1" --abits "$2" --duq-init mse)
	label() { [[ $1 == 0 ]] && echo f || echo "$1"; }
	echo "| w$(label "$1") / a$(label "$2") | $fp | $p | $m |"
done
