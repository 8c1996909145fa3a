// Package sim is an analytic accelerator simulator: it estimates, layer by
// layer, the cycles and energy of running a network on OLAccel (outlier-aware
// 4-bit hardware), on the zero-aware ZeNA-16/-8 and on Eyeriss-style 16/8-bit
// designs, broken down into DRAM, global buffer, local (register file and
// on-chip network) and MAC (dense and outlier units) energy. Architecture
// parameters and per-access energies come from a JSON configuration in which
// every number carries its source or stated assumption (DefaultConfig embeds
// arch.json). Workloads are built-in ImageNet layer tables (AlexNet, VGG-16,
// ResNet-18) or come from a lowbit graph via FromGraph, with per-layer zero
// and outlier statistics measured by CollectStats on calibration data.
package sim
