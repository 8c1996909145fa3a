lowbit bench --model lenet5 --input 1x28x28 --steps 2 --warmup 1 --batch 16 --infer-batch 32 --json
