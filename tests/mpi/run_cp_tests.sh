#!/usr/bin/env bash
# The context-parallel kernels `ring` and `ulysses` against the double oracle
# over 2 and 4 MPI ranks on this machine (mpirun --oversubscribe: more ranks
# than cores is fine, the problems are small): build/attnbench_cp_check
# (tests/mpi/cp_check.c) checks forward and backward on full, causal, window
# and document masks with GQA, the bytes each rank sent against the volume
# formulas, and the refusal of a length that does not split. Then the command
# a user runs, 'mpirun -n 2 attnbench bench --kernel ring|ulysses --out F',
# must write each job's six rows (the timing with the gate's max_abs_err,
# comm_bytes_per_rank, comm_ms, comm_overlap in [0, 1] (0 for ulysses),
# one_rank_ms, efficiency_vs_1rank > 0), host_ranks 2 (not in params: it is
# no part of the job_id), and no
# error or skipped row. Then 'attnbench cpmodel' (the cost model) with its
# ping-pong probe over 2 ranks, and with a given free link (efficiency 1),
# and its figure (plots/cp_model.gp) must render without a gnuplot message. ./run.sh test
# runs this after the Criterion suite; about 15 seconds.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/mpi/run_cp_tests.sh [--build DIR] [--ranks "P ..."]
  --build DIR    where attnbench_cp_check is (default build)
  --ranks LIST   rank counts to run (default "2 4")
Exit 0 when every case passed at every rank count, 1 otherwise, 2 on bad usage.
EOF
}

say() { printf 'run_cp_tests: %s\n' "$*" >&2; }

build=build ranks="2 4"
while (($#)); do
    case $1 in
        --build | --ranks)
            (($# >= 2)) || { say "$1 needs a value"; exit 2; }
            case $1 in --build) build=$2 ;; --ranks) ranks=$2 ;; esac
            shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) say "unknown argument '$1'"; usage >&2; exit 2 ;;
    esac
done

bin=$build/attnbench_cp_check
if [[ ! -x $bin || ! -x $build/attnbench ]]; then
    say "$bin was not built: CMake found no MPI (apt-get install libopenmpi-dev openmpi-bin) or ATTN_TESTS=OFF"
    exit 1
fi
command -v mpirun >/dev/null || { say "mpirun not found: apt-get install openmpi-bin"; exit 1; }

# Open MPI refuses to start as root unless told twice; containers and CI run as root.
if ((EUID == 0)); then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# ranks share the cores: OpenMP workers (one per rank here) must not spin
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} OMP_NUM_THREADS=1

rc=0
for p in $ranks; do
    say "mpirun --oversubscribe -n $p $bin"
    # a hang (a lost message) must fail, not stall CI
    timeout 120 mpirun --oversubscribe -n "$p" "$bin" || rc=1
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for k in ring ulysses; do
    say "mpirun --oversubscribe -n 2 $build/attnbench bench --kernel $k ... --out $work/cp.csv"
    timeout 120 mpirun --oversubscribe -n 2 "$build/attnbench" bench --kernel "$k" --mask causal --B 1 --H 4 \
        --Hkv 2 --N 256 --D 32 --threads 1 --reps 2 --warmup 0 --pass fwdbwd --out "$work/cp.csv" >/dev/null 2>"$work/bench.log" ||
        { say "FAIL: bench --kernel $k exited with an error:"; cat "$work/bench.log" >&2; rc=1; }
done
for metric in max_abs_err comm_bytes_per_rank comm_ms comm_overlap one_rank_ms efficiency_vs_1rank; do
    n=$(grep -c ",$metric," "$work/cp.csv" || true)
    ((n == 2)) || { say "FAIL: $n rows of $metric in the bench output, expected 2 (one per kernel)"; rc=1; }
done
# the figures are fractions (ulysses hides nothing: overlap 0), the rows name the ranks per host
if ! awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { m = $col["metric"]; v = $col["value"] }
        m == "comm_overlap" && !(v >= 0 && v <= 1) { print "comm_overlap " v " outside [0, 1]"; bad = 1 }
        m == "comm_overlap" && $col["kernel"] == "ulysses" && v != 0 { print "ulysses overlap " v ", expected 0"; bad = 1 }
        m == "efficiency_vs_1rank" && !(v > 0) { print "efficiency " v ", expected > 0"; bad = 1 }
        $col["host_ranks"] != 2 { print "host_ranks " $col["host_ranks"] ", expected 2"; bad = 1 }
        $col["params"] ~ /host_ranks/ { print "host_ranks in params: " $col["params"]; bad = 1 }
        END { exit bad }' "$work/cp.csv" >&2; then
    say "FAIL: a communication or efficiency row is out of range (above)"; rc=1
fi
if grep -q ',error:\|,skipped:' "$work/cp.csv"; then
    say "FAIL: a bench job failed or was skipped:"; grep ',error:\|,skipped:' "$work/cp.csv" >&2; rc=1
fi

# The cost model end to end: the probe over 2 ranks writes one row per kernel and P; with a
# given free link and one measured block size every feasible prediction is efficiency 1.
say "mpirun --oversubscribe -n 2 $build/attnbench cpmodel --out $work/model.csv ..."
model=(--N 4096 --max-P 8 --H 4 --Hkv 2 --D 32 --threads 1 --blocks 64)
if timeout 120 mpirun --oversubscribe -n 2 "$build/attnbench" cpmodel "${model[@]}" --out "$work/model.csv" 2>"$work/model.log" &&
    "$build/attnbench" cpmodel "${model[@]}" --latency-us 0 --bandwidth-gbs 1e9 --out "$work/free.csv" 2>>"$work/model.log"; then
    n=$(grep -c '^"*\(ring\|ulysses\)' "$work/model.csv" || true)
    ((n == 8)) || { say "FAIL: $n predictions in the probed model, expected 8 (2 kernels x P = 1, 2, 4, 8)"; rc=1; }
    grep -q 'link fit: latency' "$work/model.log" || { say "FAIL: the probe printed no link fit"; rc=1; }
    if ! awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            $col["efficiency"] != "" { n++; if ($col["efficiency"] < 0.999 || $col["efficiency"] > 1.001) { print; bad = 1 } }
            END { exit bad || n < 5 }' "$work/free.csv" >&2; then
        say "FAIL: a free link with one block rate must predict efficiency 1 for every feasible row"; rc=1
    fi
    # its figure, with the bench rows above as the measured file (their pass is fwdbwd: no points)
    if command -v gnuplot >/dev/null; then
        cp "$work/model.csv" "$work/cp_model.csv"
        plots=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../plots" && pwd)
        if ! gnuplot -e "set loadpath '$plots'; csv='$work/cp_model.csv'; results='$work'; out_png='$work/m.png';
                out_svg='$work/m.svg'" "$plots/cp_model.gp" 2>"$work/gp.log" || [[ -s $work/gp.log || ! -s $work/m.png ]]; then
            say "FAIL: plots/cp_model.gp on the model's CSV:"; cat "$work/gp.log" >&2; rc=1
        fi
    fi
else
    say "FAIL: attnbench cpmodel exited with an error:"; cat "$work/model.log" >&2; rc=1
fi

((rc == 0)) && say "all passed at ranks: $ranks, the bench rows and the cost model" || say "FAILED (see the FAIL lines above)"
exit "$rc"
