#!/usr/bin/env bash
# Sweeps spread over MPI ranks: 'mpirun -n 2 attnbench sweep' on
# tests/data/kill_sweep.json (kernel jobs, two short trainings, one with an
# extrapolation grid and a kv dump, kernel jobs on that dump) must leave in
# its results directory, merged by rank 0 from part-0/ and part-1/, exactly
# the rows of a single-process run of the same config: the same job_ids,
# none twice, identity cells and status equal (build/attnbench_rowcheck,
# the project's CSV reader), and every timed row says host_ranks 2 where
# the single-process run's say 1. Then a second 2-rank sweep has one rank killed
# with SIGKILL once its part has rows, is resumed with --resume, and must
# end with the same rows, no duplicates; and so must a 3-rank sweep killed
# the same way and resumed with 2 ranks (rows of every part present count,
# part-2's included). ./run.sh test runs this after tests/mpi/run_cp_tests.sh;
# about two minutes.
set -euo pipefail

usage() {
    cat <<'EOF2'
usage: tests/mpi/run_sweep_tests.sh [--build DIR]
  --build DIR    where attnbench and attnbench_rowcheck are (default build)
Exit 0 when both checks passed, 1 otherwise, 2 on bad usage.
EOF2
}

say() { printf 'run_sweep_tests: %s\n' "$*" >&2; }

build=build
while (($#)); do
    case $1 in
        --build) (($# >= 2)) || { say "--build needs a value"; exit 2; }; build=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) say "unknown argument '$1'"; usage >&2; exit 2 ;;
    esac
done
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.."
bin=$build/attnbench check=$build/attnbench_rowcheck config=tests/data/kill_sweep.json
for b in "$bin" "$check" "$build/attnbench_cp_check"; do
    [[ -x $b ]] || { say "$b not built: CMake found no MPI (apt-get install libopenmpi-dev openmpi-bin) or ATTN_TESTS=OFF"; exit 1; }
done
command -v mpirun >/dev/null || { say "mpirun not found: apt-get install openmpi-bin"; exit 1; }
if ((EUID == 0)); then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} OMP_NUM_THREADS=1

work=$(mktemp -d "${TMPDIR:-/tmp}/attn_mpi_sweep.XXXXXX")
failed=1 pid=""
cleanup() {
    [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true
    if ((failed)); then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say "reference: one process, $bin sweep --config $config"
"$bin" sweep --config "$config" --results "$work/ref" >/dev/null 2>"$work/ref.log" ||
    { say "FAIL: the single-process sweep failed (log: $work/ref.log)"; exit 1; }

compare() { # $1: the merged directory, $2: what it was, $3: the host_ranks of every timed row (optional)
    if ! "$check" "$work/ref" "$1" ${3:+"$3"} >"$1.check" 2>&1; then
        cat "$1.check" >&2
        say "FAIL: $2: the merged rows differ from the single-process run's"
        exit 1
    fi
    say "$2: $(sed -n 's/^rows compared: //p' "$1.check") rows match the single-process run"
}

say "mpirun --oversubscribe -n 2 $bin sweep --config $config --results $work/mpi"
timeout 300 mpirun --oversubscribe -n 2 "$bin" sweep --config "$config" --results "$work/mpi" >/dev/null 2>"$work/mpi.log" ||
    { say "FAIL: the 2-rank sweep exited with an error (log: $work/mpi.log)"; exit 1; }
[[ -d $work/mpi/part-0 && -d $work/mpi/part-1 ]] || { say "FAIL: no part-0/ and part-1/ in $work/mpi"; exit 1; }
compare "$work/mpi" "2 ranks" 2 # both ranks on this host: host_ranks 2, the job_ids of host_ranks 1

# kill_and_resume DIR P Q: a P-rank sweep into DIR has one rank killed with
# SIGKILL once part-1 has rows (mpirun ends the others), then a Q-rank sweep
# with --resume must complete the set: every part present is read, so only
# the missing job_ids run, whatever P was.
kill_and_resume() {
    local dir=$1 p=$2 q=$3 i rank killed=0 krc=0
    say "$p ranks, one killed with SIGKILL once its part has rows, then --resume with $q ranks"
    timeout 300 mpirun --oversubscribe -n "$p" "$bin" sweep --config "$config" --results "$dir" >/dev/null 2>"$dir.kill.log" &
    pid=$!
    for ((i = 0; i < 600; i++)); do
        [[ -s $dir/part-1/kernels.csv ]] && break
        sleep 0.05
    done
    for rank in $(pgrep -P "$(pgrep -P "$pid" -x mpirun || echo "$pid")" -x attnbench || true); do
        kill -9 "$rank" 2>/dev/null && killed=1
        break # one rank only
    done
    wait "$pid" 2>/dev/null || krc=$?
    pid=""
    if ((killed && krc)); then
        say "killed one rank: mpirun exited with $krc, the merge did not run ($(ls "$dir" | grep -vc '^part-') merged files)"
    else
        say "note: the sweep ended before the kill landed; the resume below still runs"
    fi
    timeout 300 mpirun --oversubscribe -n "$q" "$bin" sweep --config "$config" --results "$dir" --resume >/dev/null \
        2>"$dir.resume.log" || { say "FAIL: the resumed $q-rank sweep exited with an error (log: $dir.resume.log)"; exit 1; }
    say "resumed: $(grep -h '^sweep: .* jobs run' "$dir.resume.log" | tr '\n' ';')"
    compare "$dir" "$p ranks killed, resumed with $q"
}

kill_and_resume "$work/kill" 2 2
# another rank count: part-2 has no rank any more, its rows count and are merged
kill_and_resume "$work/kill3" 3 2
failed=0
say "all passed"
