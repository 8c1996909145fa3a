#!/usr/bin/env bash
# Must-show: MobileNetV2 and MobileNetV3-small at 4/4 on Fashion-MNIST with
# DuQ + progressive bits (8 → 5 → 4, activations first) + BN-last phases +
# distillation from the float model + weight EMA, against float (paper:
# 4-bit MobileNets within 1.48 %; BLast + DuQ MobileNet-v3 −0.916 %), and a
# plain DuQ fine-tune with the same epoch budget. MobileNetV3 is trained and
# fine-tuned with negative padding (−3/8 before quantized h-swish inputs).
#
# The residual stream stays in float (--highway; run names end in -hw), as in
# the PROFIT reference code, whose quantized MobileNets quantize each block's
# branch input while the skip path adds the unquantized tensor. HIGHWAY=0
# quantizes the skip path too (every reader of a quantized tensor reads the
# quantized copy; names without -hw).
#
# Budget: 6 bit-width steps × (QAT_EPOCHS + 2·BN_LAST) epochs per model.
# See experiments/qat_lib.sh for the settings (SMOKE=1 for a quick check).
source "$(dirname "$0")/qat_lib.sh"
FLOAT_EPOCHS=${FLOAT_EPOCHS:-30}
QAT_EPOCHS=${QAT_EPOCHS:-2}
BN_LAST=${BN_LAST:-1}
PROGRESSIVE=${PROGRESSIVE:-8,5,4}
steps=$(($(tr ',' '\n' <<<"$PROGRESSIVE" | awk '$1>4' | wc -l) * 2 + 2))
budget=$((steps * (QAT_EPOCHS + 2 * BN_LAST)))
hw=(--highway) sfx=-hw
if [[ ${HIGHWAY:-1} == 0 ]]; then
	hw=() sfx=
fi
# MSE-initialized activation ranges and BatchNorm re-estimation (DUQ_INIT,
# BN_REEST in qat_lib.sh; DUQ_INIT=p95 BN_REEST=0 is methods.md as written).
hw+=("${tune_args[@]}") sfx+=$tune_sfx

float mnv2-fp32 mobilenetv2
float mnv3-fp32 mobilenetv3-small --neg-pad
for m in mnv2 mnv3; do
	ft "$m-w4a4-recipe$sfx" "$m-fp32" --method duq --wbits 4 --abits 4 --progressive "$PROGRESSIVE" \
		--bn-last "$BN_LAST" --teacher "$OUT/$m-fp32.onnx" --ema --epochs "$QAT_EPOCHS" "${hw[@]}"
	ft "$m-w4a4-plain$sfx" "$m-fp32" --method duq --wbits 4 --abits 4 --epochs "$budget" "${hw[@]}"
done
summary mnv2- mnv3-fp32 mnv3-w4a4
