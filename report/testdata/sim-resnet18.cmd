lowbit simulate --net resnet18 --accel olaccel,zena16,eyeriss16 --json
