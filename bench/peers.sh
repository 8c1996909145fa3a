#!/usr/bin/env bash
# Runs lowbit next to its peers on this machine and prints one markdown
# table with the ratios: SGEMM 256/512/1024 against OpenBLAS, ResNet-20
# (1×28×28) and MobileNetV2 (3×32×32) training against PyTorch and
# inference against ONNX Runtime and PyTorch, with each run's peak RSS.
# Every measurement is its own process (so its peak RSS is its own); the
# tools alternate within each round and the best of ROUNDS rounds counts,
# which keeps transient load on a shared machine from favouring one side.
#
# Usage: bench/peers.sh [--rounds N] [--out FILE]
# Needs: go, /usr/bin/python3 with torch 1.13 and numpy, libopenblas0
# (pthread), node with onnxruntime-node (ORT_NODE_PATH, default
# tools/ort/node_modules). PEERS points at the reference scripts
# (default ../shared/peers). All peers run with 2 threads.
set -euo pipefail

# OpenBLAS tuning overrides would skew its numbers; drop them here only.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

rounds=2
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	*) echo "peers.sh: unknown argument $1 (want --rounds N, --out FILE)" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$root/../shared/peers}
ortpath=${ORT_NODE_PATH:-$root/tools/ort/node_modules}
py=/usr/bin/python3
export THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 GOMAXPROCS=2

for f in "$peers/torch_models.py" "$peers/export_reference.py" "$ortpath/onnxruntime-node"; do
	[ -e "$f" ] || { echo "peers.sh: missing $f" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
cd "$root"
go build -o "$work/lowbit" ./cmd/lowbit
go test -c -o "$work/kernels.test" ./kernels
"$py" "$peers/export_reference.py" "$work/onnx" >/dev/null 2>&1

# record TOOL WHAT ROUND < json
record() { "$py" -c 'import json,sys; d=json.load(sys.stdin); d.update(tool=sys.argv[1], what=sys.argv[2], round=int(sys.argv[3])); print(json.dumps(d))' "$@" >>"$results"; }

for r in $(seq 1 "$rounds"); do
	echo "round $r/$rounds: SGEMM" >&2
	# Every kernel implementation this CPU has; the report takes the best.
	(cd kernels && "$work/kernels.test" -test.run '^$' -test.bench '^BenchmarkSgemm$/(avx512|avx2|generic)/NN/(256|512|1024)$' -test.benchtime 1s) |
		"$py" -c 'import json,re,sys
d={}
for l in sys.stdin:
    m=re.search(r"/(\w+)/NN/(\d+)\S*\s.*?([\d.]+) GFLOPS",l)
    if m and float(m.group(3))>d.get(m.group(2),0): d[m.group(2)]=float(m.group(3)); d["impl_"+m.group(2)]=m.group(1)
print(json.dumps(d))' | record lowbit sgemm "$r"
	"$py" bench/openblas_sgemm.py 256 512 1024 | record openblas sgemm "$r"

	for spec in resnet20:1x28x28:6 mobilenetv2:3x32x32:3; do
		IFS=: read -r model input steps <<<"$spec"
		c=${input%%x*}; hw=${input#*x}; h=${hw%x*}; w=${hw#*x}
		echo "round $r/$rounds: $model" >&2
		"$work/lowbit" bench --model "$model" --input "$input" --batch 128 --infer-batch 1 --steps "$steps" --json | record lowbit "$model/train" "$r"
		"$py" bench/torch_peer.py "$peers" "$model" train | record pytorch "$model/train" "$r"
		"$work/lowbit" bench --model "$model" --input "$input" --batch 1 --warmup 1 --infer-batch 256 --steps 10 --json | record lowbit "$model/infer" "$r"
		NODE_PATH="$ortpath" node bench/ort_peer.js "$work/onnx/$model.onnx" "$c" "$h" "$w" | record ort "$model/infer" "$r"
		"$py" bench/torch_peer.py "$peers" "$model" infer | record pytorch "$model/infer" "$r"
		"$py" bench/torch_peer.py "$peers" "$model" infer-cl | record pytorch-cl "$model/infer" "$r"
	done
done

cmd="bench/peers.sh --rounds $rounds${out:+ --out $out}"
if [ -n "$out" ]; then
	"$py" bench/report.py "$results" "$cmd" >"$out.tmp" && mv "$out.tmp" "$out"
	cat "$out"
else
	"$py" bench/report.py "$results" "$cmd"
fi
