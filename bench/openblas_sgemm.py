# SGEMM throughput of OpenBLAS (row-major, no transposes) through ctypes,
# best of three timing trials per size. Threads: OPENBLAS_NUM_THREADS.
# Usage: /usr/bin/python3 openblas_sgemm.py N...   → JSON {"N": GFLOPS, ..., "core": name}
import ctypes, json, sys, time
import numpy as np

lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
lib.openblas_get_num_threads.restype = ctypes.c_int
P = ctypes.POINTER(ctypes.c_float)
ROW_MAJOR, NO_TRANS = 101, 111


def gflops(n):
    rng = np.random.default_rng(1)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.zeros((n, n), dtype=np.float32)
    pa, pb, pc = (m.ctypes.data_as(P) for m in (a, b, c))

    def run():
        lib.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, n, n, n, ctypes.c_float(1), pa, n, pb, n, ctypes.c_float(0), pc, n)

    for _ in range(3):
        run()
    best = 0.0
    for _ in range(3):
        reps, t0 = 0, time.perf_counter()
        while True:
            run()
            reps += 1
            el = time.perf_counter() - t0
            if el > 0.5:
                break
        best = max(best, 2 * n**3 * reps / el / 1e9)
    assert np.allclose(c[:4, :4], (a @ b)[:4, :4], rtol=1e-3), "cblas_sgemm result wrong"
    return best


out = {str(n): round(gflops(int(n)), 1) for n in sys.argv[1:]}
out["core"] = lib.openblas_get_corename().decode()
out["threads"] = lib.openblas_get_num_threads()
print(json.dumps(out))
