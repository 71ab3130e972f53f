"""SGEMM side by side: fastnn vs numpy (OpenBLAS) vs PyTorch (MKL), as a markdown table.

    python bench/compare_gemm.py                  # 1 and 2 threads, all shapes
    python bench/compare_gemm.py --threads 1 --quick

Each library runs in its OWN subprocess with a pinned thread count
(fastnn: OMP_NUM_THREADS + set_num_threads; numpy: OPENBLAS_NUM_THREADS, with
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS picks its own kernel;
torch: torch.set_num_threads + OMP/MKL_NUM_THREADS). Alternating OpenBLAS's
pthread pool and an OpenMP pool in one process stalls calls by milliseconds
on 2 cores, so they never share a process. Every library
writes into a preallocated C (numpy/torch through ``out=``); times are the
best of several batches of calls; ``--rounds`` repeats the whole sweep and
keeps each entry's best (the machine is shared and noisy).

The FMA peak is measured in the same run by a small C probe (independent
FMA chains on the widest vectors the CPU has, compiled here with gcc), on 1
and on 2 threads. The per-call time of the 128x128x10 output layer is also
measured from C (a loop over fnn_sgemm compiled against csrc/).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = [(784, 256), (256, 128), (128, 10)]


def shapes(quick=False):
    """(name, transA, transB, M, N, K)."""
    out = []
    for batch in ((128,) if quick else (32, 128, 512)):
        for fin, fout in LAYERS:
            out.append((f"fwd X.W b{batch} {fin}->{fout}", 0, 0, batch, fout, fin))
            out.append((f"dW X^T.dY b{batch} {fin}->{fout}", 1, 0, fin, fout, batch))
            out.append((f"dX dY.W^T b{batch} {fin}->{fout}", 0, 1, batch, fin, fout))
    for n in ((256, 1024) if quick else (64, 128, 256, 512, 1024, 2048)):
        out.append((f"square {n}", 0, 0, n, n, n))
    return out


# ------------------------------------------------------------------ worker

def _time(f, flops):
    """Best seconds per call over batches of ~20 ms (at least 3 batches)."""
    f()
    reps = max(1, int(2e7 / max(flops, 1.0) * 50))
    t0 = time.perf_counter()
    f()
    one = time.perf_counter() - t0
    reps = max(1, min(reps, int(0.02 / max(one, 1e-7))))
    batches = 3 if one > 0.05 else 7
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def worker(lib, threads, quick):
    import numpy as np
    if lib == "fastnn":
        sys.path.insert(0, ROOT)
        from fastnn import _core
        _core.set_num_threads(threads)
        info = _core.sgemm_kernel_name()
    elif lib == "torch":
        import torch
        torch.set_num_threads(threads)
        info = torch.__version__
    else:
        info = np.__version__
    res = {"info": info, "times": {}}
    rng = np.random.default_rng(0)
    for name, ta, tb, M, N, K in shapes(quick):
        A = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        B = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        C = np.zeros((M, N), np.float32)
        if lib == "fastnn":
            def f():
                _core.sgemm(ta, tb, 1.0, A, B, 0.0, C)
        elif lib == "torch":
            tA, tB, tC = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(C)
            a = tA.T if ta else tA
            b = tB.T if tb else tB

            def f():
                torch.matmul(a, b, out=tC)
        else:
            a = A.T if ta else A
            b = B.T if tb else B

            def f():
                np.matmul(a, b, out=C)
        res["times"][name] = _time(f, 2.0 * M * N * K)
    print(json.dumps(res))


def run_worker(lib, threads, quick):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if lib == "numpy":
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    else:
        env["OPENBLAS_NUM_THREADS"] = "1"   # keep numpy's pool out of the way
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        print(f"[{lib} x{threads} failed: {r.stderr.strip()[-300:]}]", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------- C probes (peak)

PEAK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
#include <omp.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define CHAINS 16
__attribute__((target("avx512f,fma"))) static double loop512(long n) {
    __m512 a[CHAINS]; __m512 x = _mm512_set1_ps(0.9999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < n; r++) {
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    }
    float s = 0; for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    return s == 12345.0f ? 0.0 : 32.0 * CHAINS * n;
}
__attribute__((target("avx2,fma"))) static double loop256(long n) {
    __m256 a[12]; __m256 x = _mm256_set1_ps(0.9999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < n; r++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    }
    float buf[8], s = 0; for (int i = 0; i < 12; i++) { _mm256_storeu_ps(buf, a[i]); s += buf[0]; }
    return s == 12345.0f ? 0.0 : 16.0 * 12 * n;
}
int main(int argc, char **argv) {
    int threads = atoi(argv[1]);
    __builtin_cpu_init();
    int w512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double flops = 0, t0 = now();
        #pragma omp parallel num_threads(threads) reduction(+:flops)
        { flops += w512 ? loop512(20000000 / CHAINS * 4) : loop256(20000000 / 12 * 4); }
        double g = flops / (now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    printf("%.2f %s\n", best, w512 ? "avx512" : "avx2");
    return 0;
}
"""

SMALL_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fastnn.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(void) {
    const int M = 128, N = 10, K = 128, reps = 20000;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 13) * 0.1f;
    for (int i = 0; i < K * N; i++) B[i] = (float)(i % 7) * 0.1f;
    fnn_set_num_threads(1);
    double best = 1e9;
    for (int b = 0; b < 9; b++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) fnn_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        double t = (now() - t0) / reps;
        if (t < best) best = t;
    }
    printf("%.3f %s\n", best * 1e6, fnn_sgemm_kernel_name());
    return 0;
}
"""


def c_probes():
    """({threads: peak GFLOPS}, peak isa, small-layer us per call, kernel) or Nones."""
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if cc is None:
        return None, None, None, None
    tmp = tempfile.mkdtemp(prefix="fastnn_cmp_")
    try:
        peak_src, small_src = os.path.join(tmp, "peak.c"), os.path.join(tmp, "small.c")
        open(peak_src, "w").write(PEAK_C)
        open(small_src, "w").write(SMALL_C)
        subprocess.run([cc, "-O2", "-fopenmp", peak_src, "-o", os.path.join(tmp, "peak")],
                       check=True, capture_output=True)
        peaks, isa = {}, None
        for t in (1, 2):
            for _ in range(3):   # best of 3: a short probe on a shared machine reads low
                out = subprocess.run([os.path.join(tmp, "peak"), str(t)], capture_output=True,
                                     text=True, check=True).stdout.split()
                peaks[t], isa = max(peaks.get(t, 0.0), float(out[0])), out[1]
        csrc = os.path.join(ROOT, "csrc")
        srcs = [os.path.join(csrc, f) for f in sorted(os.listdir(csrc))
                if f.startswith(("gemm", "cpu", "threads")) and f.endswith(".c")]
        subprocess.run([cc, "-O3", "-std=c99", "-fopenmp", "-I" + csrc, small_src] + srcs +
                       ["-lm", "-o", os.path.join(tmp, "small")], check=True, capture_output=True)
        out = subprocess.run([os.path.join(tmp, "small")], capture_output=True, text=True,
                             check=True).stdout.split()
        return peaks, isa, float(out[0]), out[1]
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"[C probes failed: {e}]", file=sys.stderr)
        return None, None, None, None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------- table

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["fastnn", "numpy", "torch"])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, int(args.threads), args.quick)
        return
    thread_counts = [int(t) for t in args.threads.split(",")]
    libs = ["fastnn", "numpy"]
    try:
        import torch  # noqa: F401
        libs.append("torch")
    except ImportError:
        pass

    peaks, peak_isa, small_us, small_kernel = c_probes()
    results, info = {}, {}
    for _ in range(args.rounds):
        for t in thread_counts:
            for lib in libs:
                r = run_worker(lib, t, args.quick)
                if r is None:
                    continue
                info[lib] = r["info"]
                cur = results.setdefault((lib, t), {})
                for k, v in r["times"].items():
                    cur[k] = min(v, cur.get(k, float("inf")))

    print("## SGEMM: fastnn vs numpy (OpenBLAS) vs PyTorch (MKL), GFLOPS\n")
    print(f"Command: `python bench/compare_gemm.py{' --quick' if args.quick else ''} "
          f"--threads {args.threads} --rounds {args.rounds}`. fastnn kernel "
          f"`{info.get('fastnn', '?')}`, numpy {info.get('numpy', '?')}"
          + (f", torch {info['torch']}" if "torch" in info else ", torch not installed") + ".")
    print("Each library runs in its own subprocess with a pinned thread count "
          "(OPENBLAS_NUM_THREADS / torch.set_num_threads / fastnn set_num_threads; "
          "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for numpy), writes into a "
          "preallocated C (`out=`), best of batches over "
          f"{args.rounds} rounds; calls go through each library's Python entry point.")
    if peaks:
        print(f"FMA peak measured in this run ({peak_isa} FMA loop): " +
              ", ".join(f"{peaks[t]:.1f} GFLOPS on {t} thread{'s' if t > 1 else ''}"
                        for t in sorted(peaks)) + ".")
    if small_us is not None:
        print(f"128x128x10 output layer from C (1 thread, `{small_kernel}`): "
              f"{small_us:.2f} us per call.")
    print()
    head = "| shape | op(A)·op(B) MxNxK | thr | fastnn | % peak | numpy | fastnn/numpy"
    sep = "|---|---|---|---|---|---|---"
    if "torch" in libs:
        head += " | torch | fastnn/torch"
        sep += "|---|---"
    print(head + " |")
    print(sep + "|")
    for t in thread_counts:
        for name, ta, tb, M, N, K in shapes(args.quick):
            gf = 2e-9 * M * N * K
            row = [name, f"{'NT'[ta]}{'NT'[tb]} {M}x{N}x{K}", str(t)]
            f = results.get(("fastnn", t), {}).get(name)
            fg = gf / f if f else None
            row.append(f"{fg:.1f}" if fg else "-")
            row.append(f"{100 * fg / peaks[t]:.0f}%" if fg and peaks and t in peaks else "-")
            for lib in libs[1:]:
                p = results.get((lib, t), {}).get(name)
                pg = gf / p if p else None
                row.append(f"{pg:.1f}" if pg else "-")
                row.append(f"{fg / pg:.2f}x" if fg and pg else "-")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
