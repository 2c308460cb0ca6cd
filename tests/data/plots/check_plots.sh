#!/usr/bin/env bash
# Renders the recall / NIAH figures from the fixture CSVs next to this file
# and fails if gnuplot prints anything (a warning included) or a figure is
# missing or empty; then checks that each script skips (exit 3, one message)
# on CSVs with rows but none usable (plot.sh itself skips missing files and
# header-only ones before gnuplot runs), and that rows without a needle depth
# (cwe, fwe) give a length plot but no heatmap. Usage: tests/data/plots/check_plots.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plots=$(cd "$here/../../../plots" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run() { # script csv suite -> exit status, stderr in $tmp/err
    local rc=0
    gnuplot -e "set loadpath '$plots'; csv='$2'; suite='$3'; out_png='$tmp/$1.png'; out_svg='$tmp/$1.svg'" \
        "$plots/$1.gp" 2>"$tmp/err" || rc=$?
    return $rc
}
for fig in mqar_lines:recall recall_state:recall niah_heatmap:niah niah_length:niah; do
    script=${fig%%:*} suite=${fig##*:}
    if ! run "$script" "$here/$suite.csv" "$suite" || [[ -s $tmp/err || ! -s $tmp/$script.png || ! -s $tmp/$script.svg ]]; then
        echo "FAIL $script: $(cat "$tmp/err")"; fail=1
    else
        echo "ok   $script.png $(stat -c %s "$tmp/$script.png") bytes"
    fi
    # rows, none usable: the other suite's file; this suite's without its test / extrap rows
    other=$([[ $suite == recall ]] && echo niah || echo recall)
    grep -v -e 'split=test;' -e 'split=extrap;' "$here/$suite.csv" >"$tmp/none.csv"
    for bad in "$tmp/none.csv" "$here/$other.csv"; do
        rc=0; run "$script" "$bad" "$suite" || rc=$?
        if ((rc != 3)); then echo "FAIL $script on $(basename "$bad"): exit $rc, expected 3 (skip)"; fail=1; fi
    done
done
# extrapolation rows without a depth (cwe, fwe): a length plot, no heatmap
grep -v ';depth=' "$here/niah.csv" >"$tmp/nodepth.csv"
rc=0; run niah_heatmap "$tmp/nodepth.csv" niah || rc=$?
if ((rc != 3)) || ! grep -q 'none with a numeric depth' "$tmp/err"; then
    echo "FAIL niah_heatmap on rows without a depth: exit $rc, expected 3 (skip): $(cat "$tmp/err")"; fail=1
fi
if ! run niah_length "$tmp/nodepth.csv" niah || [[ -s $tmp/err || ! -s $tmp/niah_length.png ]]; then
    echo "FAIL niah_length on rows without a depth: $(cat "$tmp/err")"; fail=1
else
    echo "ok   niah_length.png from rows without a depth"
fi
exit $fail
