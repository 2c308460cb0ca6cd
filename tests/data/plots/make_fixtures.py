#!/usr/bin/env python3
# Writes the fixture CSVs of the recall / NIAH figures (plots/mqar_lines.gp,
# recall_state.gp, niah_heatmap.gp, niah_length.gp) in the results schema
# (harness/results/schema.h), with made-up but formula-checkable accuracies:
#   recall.csv  MQAR test rows (split=test) of 4 kernels x 3 widths x 2 (L, D)
#               x a 2-point lr grid (the second lr 0.05 worse), the matching
#               valid rows (0.9 x) and an induction row, which the figures ignore,
#               titans at L 256 with and without kernel_params (one curve) and an
#               hmt model over flash (a series of its own)
#   niah.csv    'attnbench eval --scale --depths' rows (split=extrap) of passkey
#               (3 kernels, trained at 256, 1-8x, 5 depths) and niah (flash,
#               trained at 512, 1-4x, 3 depths) and cwe (flash, trained at 256, 1-4x, no
#               depth: the length plot's, not the heatmap's), plus the runs' valid and test rows
# Run from anywhere: python3 tests/data/plots/make_fixtures.py
import csv, math, os, re
here = os.path.dirname(os.path.abspath(__file__))
schema = open(os.path.join(here, '..', '..', '..', 'harness', 'results', 'schema.h')).read()
hdr = re.findall(r'X\(\w+, "(\w+)"\)', schema)
def row(**kw):
    r = {h: '' for h in hdr}
    r.update(run_id='fixture0001', utc='2026-11-28T12:00:00Z', git_sha='fixture', cpu='AMD EPYC', threads='2',
             mask='causal', dtype='fp32', B='16', seed='1', data_source='generated', metric='accuracy',
             status='ok', papi_status='NA:not measured in training rows')
    r['pass'] = 'train'
    for k, v in kw.items(): r[k] = str(v)
    return r
def write(name, rows):
    with open(os.path.join(here, name), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=hdr, lineterminator='\n')
        w.writeheader()
        for i, r in enumerate(rows):
            r['job_id'] = '%016x' % (0xf1a7000 + i)
            w.writerow(r)
# --- recall.csv: MQAR test rows, a lr grid of 2, plus rows the figures must ignore
rows = []
kern = {'flash': (0.99, 0.2), 'linear': (0.55, 0.12), 'based': (0.9, 0.15), 'linear+flash': (0.8, 0.1)}
for L, D in ((64, 4), (256, 16)):
    for k, (top, slope) in kern.items():
        for d in (32, 64, 128):
            H = 2
            layers = 2
            if k == 'flash': state = layers * 2 * L * d * 4
            elif k == 'linear': state = layers * H * (d // H) * (d // H + 1) * 4
            elif k == 'based': state = layers * (H * (1 + 16 + 136) * (d // H) * 4 + 2 * 64 * d * 4)
            else: state = (H * (d // H) * (d // H + 1) * 4) + 2 * L * d * 4
            for lr in (0.001, 0.003):
                acc = max(0.0, min(1.0, top - slope * math.log2(256 / d) * (L / 256) - (0.05 if lr == 0.003 else 0)))
                ci = 1.96 * math.sqrt(max(acc * (1 - acc), 1e-4) / 512)
                model = 'lm(L=2,d=%d,H=%d,mlp=0,pos=learned)' % (d, H)
                base = dict(suite='recall', task='mqar', kernel=k, model=model, H=H, H_kv=H, N=L, N_kv=L, D=d // H, Dv=d // H,
                            state_bytes=state, train_steps=2000)
                rows.append(row(params='L=%d;D=%d;lr=%g;wd=0.1;steps=2000;n=20000;step=1000;split=valid' % (L, D, lr),
                                value='%.6f' % (acc * 0.9), ci_low='%.6f' % max(0, acc * 0.9 - ci), ci_high='%.6f' % min(1, acc * 0.9 + ci), **base))
                rows.append(row(params='L=%d;D=%d;lr=%g;wd=0.1;steps=2000;n=20000;step=2000;split=test;best_step=2000;weights=last' % (L, D, lr),
                                value='%.6f' % acc, ci_low='%.6f' % max(0, acc - ci), ci_high='%.6f' % min(1, acc + ci), **base))
# an induction row: not MQAR
rows.append(row(suite='recall', task='induction', kernel='flash', model='lm(L=2,d=64,H=2,mlp=0,pos=learned)', H=2, H_kv=2,
                N=256, N_kv=256, D=32, Dv=32, params='L=256;V=16;lr=0.001;wd=0.1;steps=200;n=2000;step=200;split=test',
                value='0.5', ci_low='0.45', ci_high='0.55', state_bytes=131072))
# one kernel at two of its own parameter settings (titans' linear and MLP memory): one panel,
# two points of one curve in recall_state, one cell (the better) in mqar_lines
for kp, state, acc in (('', 65536, 0.4), ('memory=mlp', 262144, 0.6)):
    rows.append(row(suite='recall', task='mqar', kernel='titans', model='lm(L=2,d=64,H=1,mlp=0,pos=learned,conv=4)',
                    H=1, H_kv=1, N=256, N_kv=256, D=64, Dv=64, state_bytes=state, train_steps=2000,
                    params='L=256;D=16;lr=0.001;wd=0.1;steps=2000;n=20000;%sstep=2000;split=test;best_step=2000;weights=last'
                    % ('kernel_params=%s;' % kp if kp else ''),
                    value='%.6f' % acc, ci_low='%.6f' % (acc - 0.04), ci_high='%.6f' % (acc + 0.04)))
# an hmt model over flash: its own series ("hmt:flash"), not a point of flash's curve
rows.append(row(suite='recall', task='mqar', kernel='flash',
                model='hmt(L=2,d=64,H=1,mlp=0,pos=learned,segment=16,summary=8,sensory=4,memories=16,unroll=2)',
                H=1, H_kv=1, N=256, N_kv=256, D=64, Dv=64, state_bytes=5120, train_steps=2000,
                params='L=256;D=16;lr=0.001;wd=0.1;steps=2000;n=20000;step=2000;split=test;best_step=2000;weights=last',
                value='0.300000', ci_low='0.260000', ci_high='0.340000'))
write('recall.csv', rows)
# --- niah.csv: passkey trained at 256 (flash, linear, based), niah trained at 512 (flash)
rows = []
def niah(task, k, T, scales, depths, d=64, H=2):
    headline = 'first_integer_match' if task == 'passkey' else 'string_match_all'
    for s in scales:
        E = s * T
        for dep in depths:
            dv = 0.5 if dep is None else dep
            if k == 'flash': acc = 1.0 if s == 1 else max(0.0, 1.0 - 0.3 * math.log2(s) - 0.2 * abs(dv - 0.5))
            elif k == 'linear': acc = max(0.0, 0.7 - 0.6 * dv - 0.1 * math.log2(s))
            else: acc = max(0.0, min(1.0, 0.95 - 0.2 * math.log2(s) * dv))
            ci = 1.96 * math.sqrt(max(acc * (1 - acc), 1e-4) / 128)
            state = 2 * 2 * E * d * 4 if k == 'flash' else 2 * H * (d // H) * (d // H + 1) * 4
            # the headline (generated answers) and the teacher-forced token accuracy beside it
            # a task without a depth parameter (cwe, fwe) has no depth in its params
            dp = ('', '') if dep is None else ('depth=%.4g;' % dep, ';depth=%.4g' % dep)
            for metric, v in ((headline, acc), ('token_accuracy', min(1.0, acc + 0.3))):
                rows.append(row(suite='niah', task=task, kernel=k, model='lm(L=2,d=%d,H=%d,mlp=128,pos=rope)' % (d, H), H=H, H_kv=H,
                                N=E, N_kv=E, D=d // H, Dv=d // H, state_bytes=state, train_steps=1500, metric=metric,
                                params='len=%d;%slr=0.001;wd=0.1;steps=1500;n=4000;step=1500;split=extrap;eval_len=%d%s;train_len=%d'
                                % (E, dp[0], E, dp[1], T), value='%.6f' % v, ci_low='%.6f' % max(0, v - ci), ci_high='%.6f' % min(1, v + ci)))
    for split in ('valid', 'test;best_step=1500;weights=last'):
        rows.append(row(suite='niah', task=task, kernel=k, model='lm(L=2,d=%d,H=%d,mlp=128,pos=rope)' % (d, H), H=H, H_kv=H, N=T,
                        N_kv=T, D=d // H, Dv=d // H, state_bytes=0, value='0.9', ci_low='0.85', ci_high='0.95', metric=headline,
                        params='len=%d;lr=0.001;wd=0.1;steps=1500;n=4000;step=1500;split=%s' % (T, split)))
D5 = [0, 0.25, 0.5, 0.75, 1]
niah('passkey', 'flash', 256, (1, 2, 4, 8), D5)
niah('passkey', 'linear', 256, (1, 2, 4, 8), D5)
niah('passkey', 'based', 256, (1, 2, 4, 8), D5)
niah('niah', 'flash', 512, (1, 2, 4), (0, 0.5, 1))
niah('cwe', 'flash', 256, (1, 2, 4), (None,))  # in the length plot, not the heatmap
write('niah.csv', rows)
