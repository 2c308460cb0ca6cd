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
Prints the files written, one per line; exits 1 if gnuplot, the CSV or its rows are missing.

options:
  RESULTS_DIR    directory holding the CSVs (default: results/ next to plots/)
  --kernels FILE kernel-efficiency CSV (default RESULTS_DIR/kernels.csv)
  --peak FILE    machine-peak CSV (default RESULTS_DIR/peak.csv; optional)
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
rows() { local n; n=$(wc -l <"$1"); echo $((n > 0 ? n - 1 : 0)); }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$(dirname "$here")/results" kernels="" peak="" out="" dense="" have_dir=0
while (($#)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --kernels | --peak | --out | --dense)
            (($# >= 2)) || die "$1 needs a value (see --help)" 2
            case $1 in
                --kernels) kernels=$2 ;;
                --peak) peak=$2 ;;
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
kernels=${kernels:-$results/kernels.csv}
peak=${peak:-$results/peak.csv}
out=${out:-$results/plots}

command -v gnuplot >/dev/null || die "gnuplot not found: apt-get install gnuplot-nox"
[[ -f $kernels ]] || die "no $kernels: run ./run.sh or ./run.sh --quick first"
(($(rows "$kernels") > 0)) || die "$kernels has a header but no rows"
if [[ ! -f $peak ]] || (($(rows "$peak") == 0)); then
    printf 'plot.sh: warning: no rows in %s; gflops_vs_n will have no sgemm peak line\n' "$peak" >&2
    peak=""
fi
# pngcairo (antialiased, dashes, Unicode) when this gnuplot has it, else libgd png.
if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then pngterm=pngcairo; else pngterm=png; fi
mkdir -p "$out"

for fig in time_vs_n gflops_vs_n memory_vs_n; do
    # Written under temporary names, renamed when gnuplot succeeds: a failed
    # run never leaves a half-written figure behind.
    tmp_png="$out/.$fig.png.tmp" tmp_svg="$out/.$fig.svg.tmp"
    vars="set loadpath $(gpstr "$here"); csv=$(gpstr "$kernels"); peakcsv=$(gpstr "$peak");"
    vars+=" out_png=$(gpstr "$tmp_png"); out_svg=$(gpstr "$tmp_svg"); pngterm='$pngterm';"
    vars+=" dense=$(gpstr "$dense"); suite='kernels'"
    if ! gnuplot -e "$vars" "$here/$fig.gp" || [[ ! -s $tmp_png || ! -s $tmp_svg ]]; then
        rm -f "$tmp_png" "$tmp_svg"
        die "gnuplot failed on $here/$fig.gp for $kernels (message above)"
    fi
    for fmt in png svg; do
        mv -f "$out/.$fig.$fmt.tmp" "$out/$fig.$fmt"
        printf '%s\n' "$out/$fig.$fmt"
    done
done
