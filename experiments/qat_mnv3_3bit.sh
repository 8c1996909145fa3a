#!/usr/bin/env bash
# Must-show: MobileNetV3-small at 3/3 on Fashion-MNIST.
#  1. PROFIT + BN-last against plain DuQ fine-tuning with the same epoch
#     budget (paper: PROFIT wins by a large margin at 3 bits). PROFIT
#     measures AIWQ during its first stage, then freezes the top third and
#     the top two thirds of the convolutions; with BN-last before and a
#     BN-only phase after: 3·QAT_EPOCHS + 2·BN_LAST epochs.
#  2. Negative against zero padding: float models trained with and without
#     --neg-pad, fine-tuned the same way with and without it (4/4 for
#     PAD_EPOCHS, default QAT_EPOCHS; 3/3 plain with the budget above).
# The residual stream stays in float (--highway, names end in -hw) as in the
# PROFIT reference code; HIGHWAY=0 quantizes the skip path too.
# See experiments/qat_lib.sh for the settings (SMOKE=1 for a quick check).
source "$(dirname "$0")/qat_lib.sh"
FLOAT_EPOCHS=${FLOAT_EPOCHS:-30}
QAT_EPOCHS=${QAT_EPOCHS:-3}
BN_LAST=${BN_LAST:-1}
budget=$((3 * QAT_EPOCHS + 2 * BN_LAST))
PAD_EPOCHS=${PAD_EPOCHS:-$QAT_EPOCHS}
hw=(--highway) sfx=-hw
if [[ ${HIGHWAY:-1} == 0 ]]; then
	hw=() sfx=
fi
# MSE-initialized activation ranges and BatchNorm re-estimation (DUQ_INIT,
# BN_REEST in qat_lib.sh; DUQ_INIT=p95 BN_REEST=0 is methods.md as written).
hw+=("${tune_args[@]}") sfx+=$tune_sfx

float mnv3-fp32 mobilenetv3-small --neg-pad
float mnv3-fp32-zeropad mobilenetv3-small
ft "mnv3-w3a3-profit-bnlast$sfx" mnv3-fp32 --method duq --wbits 3 --abits 3 --profit --bn-last "$BN_LAST" --epochs "$QAT_EPOCHS" "${hw[@]}"
ft "mnv3-w3a3-plain$sfx" mnv3-fp32 --method duq --wbits 3 --abits 3 --epochs "$budget" "${hw[@]}"
ft "mnv3-w3a3-plain-zeropad$sfx" mnv3-fp32-zeropad --method duq --wbits 3 --abits 3 --epochs "$budget" --neg-pad=false "${hw[@]}"
ft "mnv3-w4a4-negpad$sfx" mnv3-fp32 --method duq --wbits 4 --abits 4 --epochs "$PAD_EPOCHS" "${hw[@]}"
ft "mnv3-w4a4-zeropad$sfx" mnv3-fp32-zeropad --method duq --wbits 4 --abits 4 --epochs "$PAD_EPOCHS" --neg-pad=false "${hw[@]}"
summary mnv3-fp32 mnv3-w3a3 mnv3-w4a4-negpad mnv3-w4a4-zeropad
