#!/usr/bin/env bash
# Must-show: ResNet-20 at 3/3 and 2/2 on Fashion-MNIST, precision highway
# against none (same DuQ quantizers, same epochs; paper, ResNet-50: 3-bit no
# loss, 2-bit −2.45 %, much worse without the highway), with the per-block
# relative error of the residual stream (--analyze-error) and its plot
# (OUT/residual-r20.svg: after initialization with and without the highway,
# and after fine-tuning).
# See experiments/qat_lib.sh for the settings (SMOKE=1 for a quick check).
source "$(dirname "$0")/qat_lib.sh"
FLOAT_EPOCHS=${FLOAT_EPOCHS:-30}
QAT_EPOCHS=${QAT_EPOCHS:-10}
HIGHWAY_BITS=${HIGHWAY_BITS:-0}

float r20-fp32 resnet20
for b in 3 2; do
	ft "r20-w${b}a${b}-none" r20-fp32 --method duq --wbits "$b" --abits "$b" --epochs "$QAT_EPOCHS" --analyze-error
	ft "r20-w${b}a${b}-highway" r20-fp32 --method duq --wbits "$b" --abits "$b" --epochs "$QAT_EPOCHS" --analyze-error \
		--highway --highway-bits "$HIGHWAY_BITS"
done
summary r20
