#!/usr/bin/env bash
# valgrind memcheck over a short training script.
#
# CPython and NumPy report errors of their own under memcheck (`import numpy`
# alone gives ~30), so a suppression file is first generated from an
# imports-only run (regenerated in a temporary folder each time, plus the
# checked-in hand-written entries in .ci/valgrind.supp.extra if present), then
# the training script runs with --error-exitcode=3. Exit 0 = no error at all;
# the script also fails if any reported frame is in fastnn's .so.
# Uses sys.executable (not a pyenv shim) and PYTHONMALLOC=malloc.
#
#   bash .ci/valgrind.sh        # uses the in-place build fastnn/_core*.so
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(python -c 'import sys; print(sys.executable)')"
work="$(mktemp -d /tmp/fastnn_valgrind.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export PYTHONMALLOC=malloc OMP_NUM_THREADS=2 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
VG=(valgrind --tool=memcheck --num-callers=30 --track-origins=no)
t0=$(date +%s)

# 1. suppressions from an imports-only run (everything the interpreter, NumPy and
#    the dynamic loader do before fastnn runs a kernel)
"${VG[@]}" --gen-suppressions=all --log-file="$work/imports.log" \
    "$PY" -c "import numpy, fastnn, fastnn._core, fastnn.reference; fastnn._core.get_num_threads()"
awk '/^{/{f=1} f{print} /^}/{f=0}' "$work/imports.log" > "$work/valgrind.supp"
# CPython itself (not built --with-valgrind) reads uninitialised words in its own
# object code later on too (tupledealloc, list_dealloc, ... measured): suppress
# errors whose TOP frame is in libpython or a stdlib extension (lib-dynload: _json). An error whose top frame is in
# fastnn's _core*.so is still reported (the ASan run covers calls into CPython).
for kind in Cond Value1 Value2 Value4 Value8 Value16 Value32 Addr1 Addr2 Addr4 Addr8 Addr16 Addr32; do
    printf '{\n   cpython-own-%s\n   Memcheck:%s\n   obj:*/libpython3*.so*\n}\n' "$kind" "$kind"
    printf '{\n   cpython-stdlib-ext-%s\n   Memcheck:%s\n   obj:*/lib-dynload/*.so\n}\n' "$kind" "$kind"
done >> "$work/valgrind.supp"
echo "valgrind: $(grep -c '^{' "$work/valgrind.supp") suppressions from the imports-only run"

# 2. a short training run: fused steps, every layer kind, predict, save/load
cat > "$work/train.py" <<'PYEOF'
import os, sys, tempfile
import numpy as np
import fastnn as fnn
rng = np.random.default_rng(0)
X = rng.normal(size=(96, 12)).astype(np.float32)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
for opt in ("adam", "sgd", "rmsprop", "adagrad"):
    m = fnn.Sequential(fnn.Linear(12, 33), fnn.ReLU(), fnn.Dropout(0.1), fnn.Linear(33, 17),
                       fnn.GELU(), fnn.Linear(17, 9), fnn.Tanh(), fnn.Linear(9, 3), seed=1)
    m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=16, verbose=0,
          validation_split=0.25)
    p = m.predict(X)
r = fnn.Sequential(fnn.Linear(12, 7), fnn.Sigmoid(), fnn.Linear(7, 1), seed=2)
for loss in ("mse", "mae", "huber", "bce_with_logits"):
    r.fit(X, (y > 0).astype(float), loss=loss, epochs=1, verbose=0)
s = fnn.Sequential(fnn.Linear(12, 5), fnn.LeakyReLU(0.1), fnn.Linear(5, 3), fnn.Softmax())
s.fused = False
s.fit(X, y, loss="mse" if False else "cross_entropy", epochs=1, verbose=0)
with tempfile.TemporaryDirectory() as d:
    m.save(os.path.join(d, "m.fnn"))
    assert np.array_equal(fnn.load(os.path.join(d, "m.fnn")).predict(X), p)
A = rng.normal(size=(130, 70)).astype(np.float32)
out = np.empty((130, 130), np.float32)
fnn._core.sgemm(False, True, 1.0, A, A, 0.0, out)
print("train ok")
PYEOF
rc=0
"${VG[@]}" --suppressions="$work/valgrind.supp" --error-exitcode=3 --log-file="$work/train.log" \
    "$PY" "$work/train.py" || rc=$?
t1=$(date +%s)
grep -E "ERROR SUMMARY|definitely lost" "$work/train.log" || true
n_fastnn=$(grep -cE "^==[0-9]+==    (at|by) .*(fnn_|__pyx_|_core\.cpython|_core\.c:|csrc/)" "$work/train.log" || true)
echo "valgrind: $n_fastnn stack frames in fastnn among reported errors"
if [ "$n_fastnn" -gt 0 ]; then
    echo "valgrind: errors with a frame in fastnn:" >&2
    grep -nE -B5 -A25 "^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched)" \
        "$work/train.log" | head -120 >&2
    rc=${rc/#0/4}
fi
[ "$rc" -ne 0 ] && { cp "$work/train.log" /tmp/fastnn_valgrind_train.log
    echo "--- log tail (full log: /tmp/fastnn_valgrind_train.log) ---" >&2
    tail -60 "$work/train.log" >&2; }
echo "valgrind: $((t1 - t0)) s, exit $rc"
exit $rc
