#!/usr/bin/env bash
# Must-show: fine-tuning with the post-training quantizers on Fashion-MNIST
# (ResNet-20 by default, MODEL=… for another zoo model):
#  - WEQ weights at 2 and 3 bits with log-domain activations at 3 bits
#    (WEQ rebuilt after every update) against uniform straight-through
#    (weights refitted every step, calibrated activation ranges) and
#    learned-step uniform (LSQ-style) at the same bits;
#  - OLAQ at 4/4 with 1 % outliers (moving-average activation thresholds)
#    against uniform straight-through at 4/4.
# See experiments/qat_lib.sh for the settings (SMOKE=1 for a quick check).
source "$(dirname "$0")/qat_lib.sh"
FLOAT_EPOCHS=${FLOAT_EPOCHS:-30}
QAT_EPOCHS=${QAT_EPOCHS:-5}
MODEL=${MODEL:-resnet20}
fp=ptq-$MODEL-fp32
if [[ $MODEL == resnet20 && -s $OUT/r20-fp32.json ]]; then
	fp=r20-fp32 # shared with qat_resnet20_highway.sh
fi
float "$fp" "$MODEL"
for w in 2 3; do
	ft "ptq-$MODEL-weq-w${w}a3" "$fp" --method weq --wbits "$w" --abits 3 --epochs "$QAT_EPOCHS"
	ft "ptq-$MODEL-uniform-w${w}a3" "$fp" --method uniform --wbits "$w" --abits 3 --epochs "$QAT_EPOCHS"
	ft "ptq-$MODEL-lsq-w${w}a3" "$fp" --method uniform --learn-range --wbits "$w" --abits 3 --epochs "$QAT_EPOCHS"
done
ft "ptq-$MODEL-olaq-w4a4-r1" "$fp" --method olaq --wbits 4 --abits 4 --outlier-ratio 0.01 --epochs "$QAT_EPOCHS"
ft "ptq-$MODEL-uniform-w4a4" "$fp" --method uniform --wbits 4 --abits 4 --epochs "$QAT_EPOCHS"
summary "ptq-$MODEL" "$fp"
