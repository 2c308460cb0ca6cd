#!/usr/bin/env bash
# Crash safety of 'attnbench sweep --resume', tested with kill -9.
#
# Runs tests/data/kill_sweep.json (kernel jobs, two short trainings, one with
# extrapolation cells and a kv dump, kernel jobs on that dump) once without
# interruption for the reference rows, then again in fresh result directories,
# killing each attempt with SIGKILL after a random delay and resuming with
# --resume until the sweep completes, round after round until --kills kills
# have landed. After every round build/attnbench_rowcheck (tests/crash/
# rows_check.c, the project's CSV reader) checks that each results file holds
# exactly the reference's jobs (by job_id), none twice, every row parseable,
# identity cells and status equal to the reference's, and that every
# checkpoint and kv dump left reads back whole.
#
# The delays come from a seeded generator; the seed is printed so that a
# failure can be replayed (timing on a loaded machine still varies).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/crash/kill_sweep.sh [--seed S] [--kills K] [--build DIR] [--keep]
  --seed S     seed of the kill delays (default: from the clock; printed)
  --kills K    kill -9 points to survive (default 20)
  --build DIR  where attnbench and attnbench_rowcheck are (default build)
  --keep       keep the work directory (default: kept only on failure)
Exit 0 when every round matched the uninterrupted run, 1 otherwise, 2 on bad usage.
EOF
}

say() { printf 'kill_sweep: %s\n' "$*" >&2; }

seed=$(($(date +%s) % 1000000)) want=20 build=build keep=0
while (($#)); do
    case $1 in
        --seed | --kills | --build)
            (($# >= 2)) || { say "$1 needs a value"; exit 2; }
            case $1 in --seed) seed=$2 ;; --kills) want=$2 ;; --build) build=$2 ;; esac
            shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) say "unknown argument '$1' (see --help)"; exit 2 ;;
    esac
done
[[ $seed =~ ^[0-9]+$ && $want =~ ^[1-9][0-9]*$ ]] || { say "--seed and --kills take positive integers"; exit 2; }

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.."
bin=$build/attnbench check=$build/attnbench_rowcheck config=tests/data/kill_sweep.json
for b in "$bin" "$check"; do
    [[ -x $b ]] || { say "$b not found: build the project with its tests first (./run.sh test)"; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/attn_kill_sweep.XXXXXX")
failed=1 pid=""
cleanup() {
    [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true # interrupted while an attempt ran
    if ((failed || keep)); then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
t_start=$(now_ms)
say "seed $seed (replay: tests/crash/kill_sweep.sh --seed $seed --kills $want)"
RANDOM=$seed

# ---- the reference: the sweep without interruption, its progress lines
# stamped with the time since the start
t0=$(now_ms)
"$bin" sweep --config "$config" --results "$work/ref" 2>&1 >/dev/null |
    while IFS= read -r line; do printf '%d %s\n' $(($(now_ms) - t0)) "$line"; done >"$work/ref.log" ||
    { say "the uninterrupted sweep failed (log: $work/ref.log)"; exit 1; }
ref_ms=$(($(now_ms) - t0))
# startup: system information and the sgemm/STREAM peaks every invocation measures
startup_ms=$(sed -n 's/^\([0-9]*\) peak (.*/\1/p' "$work/ref.log" | head -n 1)
startup_ms=${startup_ms:-0}
say "uninterrupted sweep: $ref_ms ms, of which $startup_ms ms startup (peaks)"

# What the sweep was doing when killed, from the last progress line it printed.
phase_of() {
    local last
    last=$(tail -n 1 "$1" 2>/dev/null || true)
    case $last in
        "[train "*"trained already"* | eval:*) echo evaluation ;;
        "[train "* | train:* | step* | test:*) echo training ;;
        "["[0-9]*) echo kernel-job ;;
        sweep:*) echo between-phases ;;
        *) echo startup ;;
    esac
}

declare -A by_phase=()
kills=0 rounds=0 attempts=0 rows=0 peak_rows=0 train_same=0 train_rows=0
max_attempts=$((want * 20))
while ((kills < want)); do
    rounds=$((rounds + 1))
    dir=$work/run$rounds
    while :; do
        attempts=$((attempts + 1))
        ((attempts <= max_attempts)) || { say "no completion after $max_attempts attempts: the sweep makes no progress between kills"; exit 1; }
        log=$work/run$rounds.$attempts.log
        "$bin" sweep --config "$config" --results "$dir" --resume >/dev/null 2>"$log" &
        pid=$!
        if ((RANDOM % 6 == 0)); then
            # one attempt in six: anywhere in the startup (system information,
            # the sgemm/STREAM peaks every sweep measures, loading the results)
            delay=$((((RANDOM << 15) | RANDOM) % (startup_ms + 1)))
        else
            # the others: once the peaks are measured, up to half the
            # reference's work, so an attempt advances by up to half the work
            # whatever the load did to its startup, and the kills walk through
            # kernel jobs, trainings and evaluations in a few attempts per
            # round; a round ends when an attempt's delay outlasts the work left
            for ((poll = 0; poll < 20 * startup_ms / 50 + 200; poll++)); do
                grep -qs '^peak (' "$log" && break # (the log may not exist yet)
                sleep 0.05
            done
            delay=$((((RANDOM << 15) | RANDOM) % ((ref_ms - startup_ms) / 2 + 1)))
        fi
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        kill -9 "$pid" 2>/dev/null || true
        rc=0
        wait "$pid" 2>/dev/null || rc=$? # (no "Killed" notice)
        pid=""
        if ((rc == 137)); then
            kills=$((kills + 1))
            phase=$(phase_of "$log")
            by_phase[$phase]=$((${by_phase[$phase]:-0} + 1))
            say "kill $kills: round $rounds, $delay ms after its start or its peaks, during $phase: $(tail -n 1 "$log" | cut -c1-80)"
            continue
        fi
        ((rc == 0)) || { say "round $rounds: the resumed sweep exited with $rc (log: $log)"; exit 1; }
        break
    done
    if ! "$check" "$work/ref" "$dir" >"$work/check$rounds.txt" 2>"$work/check$rounds.err"; then
        cat "$work/check$rounds.txt" "$work/check$rounds.err" >&2
        say "round $rounds: the resumed results differ from the uninterrupted run's (seed $seed)"
        exit 1
    fi
    # the checker's totals (its own output, not the CSV)
    n=$(sed -n 's/^rows compared: //p' "$work/check$rounds.txt")
    p=$(sed -n 's/^peak rows parsed: //p' "$work/check$rounds.txt")
    read -r same _ of < <(sed -n "s/^training rows with the reference's value: //p" "$work/check$rounds.txt")
    rows=$((rows + n)) peak_rows=$((peak_rows + p)) train_same=$((train_same + same)) train_rows=$((train_rows + of))
    say "round $rounds complete: $n rows match the uninterrupted run ($same of $of training values repeat it exactly)"
done

phases=""
for p in startup kernel-job training evaluation between-phases; do
    [[ -n ${by_phase[$p]:-} ]] && phases+="${phases:+, }$p ${by_phase[$p]}"
done
failed=0
say "survived $kills kill -9 points ($phases) in $rounds rounds of $attempts attempts;" \
    "$rows result rows compared, all matching the uninterrupted run (and $peak_rows peak rows parsed);" \
    "training values repeated exactly: $train_same of $train_rows; seed $seed; $((($(now_ms) - t_start) / 1000)) s"
