#!/usr/bin/env bash
# Draws the kernel-efficiency figures from the results CSVs with gnuplot.
# See plots/README.md for what each figure shows.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: plots/plot.sh [options] [RESULTS_DIR]

Draws, from RESULTS_DIR/kernels.csv (suite=kernels, status=ok rows) and
RESULTS_DIR/peak.csv (suite=peak, kernel=sgemm rows), into RESULTS_DIR/plots/:
  time_vs_n.png  time_vs_n.svg     median time vs N, log-log, p10/p90 bars, N and N^2 guides
  gflops_vs_n.png gflops_vs_n.svg  GFLOP/s vs N with the measured sgemm peak line
  memory_vs_n.png memory_vs_n.svg  workspace and peak RSS vs N, log-log, N and N^2 guides
Each file has one panel per (mask, pass, D, B, H, H_kv, threads) found in the CSV.
When kernels.csv has rows with simulated counters ('bench --counters cachegrind'), also:
  sim_misses.png sim_misses.svg    simulated L1 and last-level misses per useful FLOP vs N
When they exist and have usable rows, also from RESULTS_DIR/masks.csv (suite=masks):
  masks_bars.png masks_bars.svg    useful and dense-equivalent GFLOP/s per mask and kernel,
                                   one panel per (pass, D, B, H, H_kv, threads) at one N
  sparsity_eff.png sparsity_eff.svg  sparsity_eff vs density (log-log), line at 1
and from RESULTS_DIR/threads.csv (suite=threads):
  threads.png threads.svg          GFLOP/s vs threads per kernel, perfect scaling from 1
                                   thread dashed, the run's sgemm roof (peak.csv) dotted, one
                                   panel per (mask, pass, N, D, B, H, H_kv)
and from RESULTS_DIR/decode.csv (suite=decode) with peak.csv (kernel=stream_triad):
  decode_gbs.png decode_gbs.svg    decode GB/s vs N_kv with the STREAM triad line
and from RESULTS_DIR/lra_bubbles.csv ('attnbench report lra'):
  lra_bubbles.png lra_bubbles.svg  LRA speed (steps/s vs flash) vs average accuracy, area = peak RSS
and from RESULTS_DIR/fidelity_pareto.csv ('attnbench report fidelity'):
  fidelity.png fidelity.svg        relative error against the oracle vs forward time, one
                                   panel per (N, input family), Pareto front, flash marked
and from RESULTS_DIR/longctx_points.csv ('attnbench report longctx'):
  longctx.png longctx.svg          decode kernels' top-k recall vs time and vs KV bytes read
                                   per token, one row of panels per KV length, decode marked
and from RESULTS_DIR/scaling.csv (suite=scaling):
  scaling_time.png scaling_time.svg  time vs N for every kernel of the scaling suite on one
                                   log-log chart per (mask, pass, D, ...), flash for contrast
and from RESULTS_DIR/recall.csv (suite=recall; 'attnbench train --task mqar' test rows):
  mqar_lines.png mqar_lines.svg    MQAR accuracy vs d_model, one line per kernel, one panel
                                   per sequence length (best over the lr grid of a cell)
  recall_state.png recall_state.svg  MQAR accuracy vs recurrent state bytes (log x), one
                                   point per configuration (d_model, kernel params, heads),
                                   joined per kernel, one panel per sequence length
and from RESULTS_DIR/niah.csv (suite=niah; 'attnbench eval --scale ... [--depths K]' rows):
  niah_heatmap.png niah_heatmap.svg  depth x length heatmap of the generated-answer score
                                   (first_integer_match / string_match_all; token_accuracy and
                                   ponder_steps rows left out), green 1 to red 0, one panel per
                                   (task, kernel, d_model, trained length, metric); cwe and fwe
                                   have no depth
  niah_length.png niah_length.svg  that score (mean over depths, if any) vs evaluation length, one
                                   line per kernel, one panel per (task, trained length, metric)
and from RESULTS_DIR/icl.csv (suite=icl; 'attnbench icl' rows):
  icl.png icl.svg                  in-context regression error / d vs examples k, one line per
                                   kernel, the closed-form baselines dashed, one panel per
                                   (d, points, sigma)
and from RESULTS_DIR/cp_model.csv ('mpirun -n 2 attnbench cpmodel --out FILE'), with the
measured efficiency_vs_1rank rows of RESULTS_DIR/cp.csv when it exists:
  cp_model.png cp_model.svg        predicted efficiency of ring and ulysses vs ranks (1..1024),
                                   labelled model, one line per (kernel, N); measured points on it
and from RESULTS_DIR/maxmem.csv (suite=maxmem; configs/maxmem.json) with the budgeted
evaluation rows of RESULTS_DIR/recall.csv:
  maxmem.png maxmem.svg            forward latency and trained-checkpoint accuracy against the
                                   working-memory budget (--mem-budget, log x), one line per kernel
Figures whose CSV is missing or has no usable rows are listed as skipped on stderr.
Prints the files written, one per line; exits 1 if gnuplot, kernels.csv or its rows
are missing (after drawing the other figures) or a gnuplot script fails.

options:
  RESULTS_DIR    directory holding the CSVs (default: results/ next to plots/)
  --kernels FILE kernel-efficiency CSV (default RESULTS_DIR/kernels.csv)
  --peak FILE    machine-peak CSV (default RESULTS_DIR/peak.csv; optional)
  --masks FILE   mask-pattern CSV (default RESULTS_DIR/masks.csv; optional, but
                 an explicitly named FILE must exist)
  --decode FILE  decode CSV (default RESULTS_DIR/decode.csv; optional, but an
                 explicitly named FILE must exist)
  --scaling FILE scaling CSV (default RESULTS_DIR/scaling.csv; optional, but an
                 explicitly named FILE must exist)
  --out DIR      where to write the figures (default RESULTS_DIR/plots)
  --dense K[,K]  kernels the N/N^2 guides are anchored to, first present wins
                 (default blas,naive; else the panel's first kernel)
  -h, --help     this text
EOF
}

die() { printf 'plot.sh: %s\n' "$1" >&2; exit "${2:-1}"; }
# A gnuplot single-quoted string literal: '' stands for one quote inside.
gpstr() { printf "'%s'" "${1//\'/\'\'}"; }
# Data rows of a CSV (lines after the header; cells never contain newlines).
# data rows: lines but the header and '#' comments (lra_bubbles.csv names its machine in one)
rows() { local n; n=$(grep -cv '^#' "$1" || true); echo $((n > 0 ? n - 1 : 0)); }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$(dirname "$here")/results" kernels="" peak="" masks="" decode="" scaling="" out="" dense="" have_dir=0
while (($#)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --kernels | --peak | --masks | --decode | --scaling | --out | --dense)
            (($# >= 2)) || die "$1 needs a value (see --help)" 2
            case $1 in
                --kernels) kernels=$2 ;;
                --peak) peak=$2 ;;
                --masks) masks=$2 ;;
                --decode) decode=$2 ;;
                --scaling) scaling=$2 ;;
                --out) out=$2 ;;
                --dense) dense=${2//,/ } ;;
            esac
            shift 2 ;;
        -*) die "unknown option '$1' (see --help)" 2 ;;
        *)
            ((have_dir == 0)) || die "expected at most one RESULTS_DIR, found '$1' too (see --help)" 2
            results=$1 have_dir=1
            shift ;;
    esac
done
# An explicitly named masks or decode CSV must exist; the defaults are optional.
[[ -z $masks || -f $masks ]] || die "no $masks (--masks)"
[[ -z $decode || -f $decode ]] || die "no $decode (--decode)"
[[ -z $scaling || -f $scaling ]] || die "no $scaling (--scaling)"
kernels=${kernels:-$results/kernels.csv}
peak=${peak:-$results/peak.csv}
masks=${masks:-$results/masks.csv}
decode=${decode:-$results/decode.csv}
scaling=${scaling:-$results/scaling.csv}
out=${out:-$results/plots}

command -v gnuplot >/dev/null || die "gnuplot not found: apt-get install gnuplot-nox"
# A missing kernels.csv still means exit 1, but after the other figures are drawn.
kernels_err=""
if [[ ! -f $kernels ]]; then
    kernels_err="no $kernels: run ./run.sh or ./run.sh --quick first"
elif (($(rows "$kernels") == 0)); then
    kernels_err="$kernels has a header but no rows"
fi
[[ -z $kernels_err ]] || printf 'plot.sh: %s\n' "$kernels_err" >&2
if [[ ! -f $peak ]] || (($(rows "$peak") == 0)); then
    printf 'plot.sh: warning: no rows in %s; gflops_vs_n will have no sgemm peak line' "$peak" >&2
    printf ' and decode_gbs no STREAM triad line\n' >&2
    peak=""
fi
# pngcairo (antialiased, dashes, Unicode) when this gnuplot has it, else libgd png.
if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then pngterm=pngcairo; else pngterm=png; fi
mkdir -p "$out"

skip() { printf 'plot.sh: skipped %s.{png,svg}: %s\n' "$1" "$2" >&2; }

# draw FIGURE CSV SUITE OPTIONAL: runs plots/FIGURE.gp on the SUITE rows of CSV.
# FIGURE may be SCRIPT:NAME to draw NAME.{png,svg} with plots/SCRIPT.gp.
# An optional figure whose script exits 3 (no usable rows) is skipped, not an error.
draw() {
    local script=${1%%:*} fig=${1##*:} csv=$2 suite=$3 optional=$4 rc=0 err=""
    # Written under temporary names, renamed when gnuplot succeeds: a failed
    # run never leaves a half-written figure behind.
    local tmp_png="$out/.$fig.png.tmp" tmp_svg="$out/.$fig.svg.tmp" vars
    vars="set loadpath $(gpstr "$here"); csv=$(gpstr "$csv"); peakcsv=$(gpstr "$peak");"
    vars+=" out_png=$(gpstr "$tmp_png"); out_svg=$(gpstr "$tmp_svg"); pngterm='$pngterm';"
    vars+=" dense=$(gpstr "$dense"); suite=$(gpstr "$suite"); results=$(gpstr "$results");"
    vars+=" machine=$(gpstr "$(sed -n '1s/^# machine: //p' "$csv")")"
    if ((optional)); then
        err=$(gnuplot -e "$vars" "$here/$script.gp" 2>&1) || rc=$?
        if ((rc == 3)); then
            rm -f "$tmp_png" "$tmp_svg"
            skip "$fig" "${err##*$'\n'}"
            return 0
        fi
        [[ -z $err ]] || printf '%s\n' "$err" >&2
    else
        gnuplot -e "$vars" "$here/$script.gp" || rc=$?
    fi
    if ((rc != 0)) || [[ ! -s $tmp_png || ! -s $tmp_svg ]]; then
        rm -f "$tmp_png" "$tmp_svg"
        die "gnuplot failed on $here/$script.gp for $csv (message above)"
    fi
    for fmt in png svg; do
        mv -f "$out/.$fig.$fmt.tmp" "$out/$fig.$fmt"
        printf '%s\n' "$out/$fig.$fmt"
    done
}

# optional_csv CSV SUITE FIGURE...: draws the figures from CSV, or says why not.
optional_csv() {
    local csv=$1 suite=$2 fig
    shift 2
    if [[ ! -f $csv ]]; then
        for fig; do skip "${fig##*:}" "no $csv"; done
    elif (($(rows "$csv") == 0)); then
        for fig; do skip "${fig##*:}" "$csv has a header but no rows"; done
    else
        for fig; do draw "$fig" "$csv" "$suite" 1; done
    fi
}

if [[ -z $kernels_err ]]; then
    for fig in time_vs_n gflops_vs_n memory_vs_n; do draw "$fig" "$kernels" kernels 0; done
    draw sim_misses "$kernels" kernels 1 # only where rows carry simulated counters
fi
optional_csv "$masks" masks masks_bars sparsity_eff
optional_csv "$decode" decode decode_gbs
optional_csv "$results/threads.csv" threads threads
optional_csv "$scaling" scaling time_vs_n:scaling_time
optional_csv "$results/lra_bubbles.csv" lra lra_bubbles
optional_csv "$results/fidelity_pareto.csv" fidelity fidelity
optional_csv "$results/longctx_points.csv" longctx longctx
optional_csv "$results/recall.csv" recall mqar_lines recall_state
optional_csv "$results/niah.csv" niah niah_heatmap niah_length
optional_csv "$results/cp_model.csv" cp cp_model
optional_csv "$results/icl.csv" icl icl
# The budgeted evaluations of the sweep's MQAR checkpoints are rows of their
# task's file (recall.csv): the figure reads both files as one.
maxmem_csv="$results/maxmem.csv"
if [[ -f $maxmem_csv && -f $results/recall.csv ]] && grep -q 'mem_budget=' "$results/recall.csv"; then
    maxmem_csv="$out/.maxmem-with-evals.csv"
    { cat "$results/maxmem.csv"; grep 'split=extrap.*mem_budget=' "$results/recall.csv"; } >"$maxmem_csv"
fi
optional_csv "$maxmem_csv" maxmem maxmem
[[ $maxmem_csv == "$results/maxmem.csv" ]] || rm -f "$maxmem_csv"
[[ -z $kernels_err ]] || exit 1
