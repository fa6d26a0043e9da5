#!/usr/bin/env node
// The table of issue #18 (tokens beside the certified peer), from one `make bench` run:
//   node benches/issue18.mjs OUT_DIR
// OUT_DIR is benches/run.sh's result directory: peer/*.json (the peer's loadgen.mjs result),
// cozo-<backend>.json (loadgen.mjs against cozo-broker) and load-<backend>.txt (benches/load.rs).
// Each figure of this run is printed beside the one the issue gives for "today" (before the
// change; EPYC run of 2026-12-04 unless said otherwise) and with its ratio to the peer of this run.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: issue18.mjs OUT_DIR');
  process.exit(2);
}
const json = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')).results : undefined);
const peerDir = join(dir, 'peer');
const peerFile = existsSync(peerDir)
  ? readdirSync(peerDir).filter((f) => /^oidc-provider-try\d+-shared-1\.json$/.test(f)).sort().pop()
  : undefined;
const peer = peerFile ? json(join(peerDir, peerFile)) : undefined;
const backends = ['sqlite', 'postgres'].map((b) => {
  const txt = join(dir, `load-${b}.txt`);
  return { b, lg: json(join(dir, `cozo-${b}.json`)), load: existsSync(txt) ? readFileSync(txt, 'utf8') : '' };
});

const num = (re, s) => {
  const m = re.exec(s);
  return m ? +m[1] : undefined;
};
const p99at = (s) => num(/^\/token \(refresh\) latency with \d+ concurrent clients: [\d.]+\/s; p50 [\d.]+ ms, p99 ([\d.]+) ms/m, s);
const logins = (s) => num(/^complete logins [^:]*: ([\d.]+)\/s/m, s);
const bound = (s) => num(/^argon2id bound: .* ([\d.]+)\/s on \d+ cores/m, s);
const hashMs = (s) => num(/^argon2id bound: .* takes ([\d.]+) ms of a core/m, s);
// Server CPU per request in ms; on PostgreSQL also with the database's processes (the cores used
// beside server and generator in the window).
const cpuMs = (r) => (r?.cpu?.server_cores !== undefined && r.per_s ? (1000 * r.cpu.server_cores) / r.per_s : undefined);
const cpuWithDbMs = (r) => (r?.cpu && r.per_s
  ? (1000 * (r.cpu.machine_busy_cores - r.cpu.loadgen_cores)) / r.per_s : undefined);

const fmt = (x, d = 0) => (x === undefined || Number.isNaN(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ratio = (a, b) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '–');

// Today's figures, from the issue (EPYC 2026-12-04 run; Xeon side-by-side runs of 2026-12-06).
const today = {
  refresh: { sqlite: '1,143 (0.56×); Xeon 596–932', postgres: '1,489 (0.73×); Xeon 1,046–1,053', peer: '2,037; Xeon 897–922' },
  code: { sqlite: '1,027 (0.47×); Xeon 606–644', postgres: '1,097 (0.50×); Xeon 713–810', peer: '2,181; Xeon 724–992' },
  p99: { sqlite: '110.6 ms; Xeon 132–241', postgres: '83.7 ms; Xeon 126–147', peer: 'Xeon 114–118 ms' },
  cpu: { sqlite: '~0.6 ms; Xeon 1.03–1.31', postgres: '~0.6 ms (+ db); Xeon 0.93–0.95', peer: 'Xeon 1.50 ms' },
  logins: { sqlite: '84/s of ~115/s (73 %)', postgres: '59/s of ~115/s (51 %)', peer: '(no hashing)' },
};

const rows = [];
const add = (name, key, target, get, peerVal, met, digits = 0, unit = '') => {
  const cells = [name, target];
  for (const { b, lg, load } of backends) {
    const v = get(b, lg, load);
    cells.push(today[key][b], v === undefined ? '–' : `${fmt(v, digits)}${unit}`);
    cells.push(key === 'p99' || key === 'logins' ? met(v, b, load) : `${ratio(v, peerVal)} ${met(v, b, load)}`);
  }
  cells.push(today[key].peer, peerVal === undefined ? '–' : `${fmt(peerVal, digits)}${unit}`);
  rows.push(cells);
};
const verdict = (ok) => (ok === undefined ? '' : ok ? 'MET' : 'NOT MET');

const peerRefresh = peer?.refresh?.per_s;
const peerCode = peer?.code_exchange?.per_s;
add('refresh grants/s (loadgen.mjs)', 'refresh', '≥ 1.5× peer (goal 2×)', (b, lg) => lg?.refresh?.per_s, peerRefresh,
  (v) => verdict(v !== undefined && peerRefresh ? v >= 1.5 * peerRefresh : undefined));
add('code exchanges/s (loadgen.mjs)', 'code', '≥ 1.5× peer (goal 2×)', (b, lg) => lg?.code_exchange?.per_s, peerCode,
  (v) => verdict(v !== undefined && peerCode ? v >= 1.5 * peerCode : undefined));
add('/token p99 at 100 clients (load.rs; peer: loadgen.mjs p99 at 16)', 'p99', '< 50 ms', (b, lg, load) => p99at(load),
  peer?.refresh?.p99_ms, (v) => verdict(v === undefined ? undefined : v < 50), 1, ' ms');
const peerCpu = cpuMs(peer?.refresh);
add('server CPU per refresh (/proc)', 'cpu', '≤ ½ peer', (b, lg) => cpuMs(lg?.refresh), peerCpu,
  (v) => verdict(v !== undefined && peerCpu ? v <= peerCpu / 2 : undefined), 2, ' ms');
add('password + TOTP logins/s (load.rs) vs argon2 bound', 'logins', '≥ 70 % of bound', (b, lg, load) => logins(load),
  peer?.login_flow?.per_s, (v, b, load) => {
    const bd = bound(load);
    return v === undefined || !bd ? '' : `${((100 * v) / bd).toFixed(0)} % of ${fmt(bd)}/s (${fmt(hashMs(load), 1)} ms/hash) ${verdict(v >= 0.7 * bd)}`;
  });

const head = ['figure', 'target', 'SQLite today', 'SQLite now', 'SQLite ×peer / met',
  'PostgreSQL today', 'PostgreSQL now', 'PostgreSQL ×peer / met', 'peer today', 'peer now'];
console.log(`| ${head.join(' | ')} |`);
console.log(`| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
const pg = backends.find((x) => x.b === 'postgres')?.lg;
if (pg?.refresh) {
  console.log(`\nPostgreSQL: server + database CPU per refresh ${fmt(cpuWithDbMs(pg.refresh), 2)} ms, ` +
    `per code exchange ${fmt(cpuWithDbMs(pg.code_exchange), 2)} ms (machine busy minus the generator).`);
}
if (peer?.code_exchange) {
  console.log(`Server CPU per code exchange: peer ${fmt(cpuMs(peer.code_exchange), 2)} ms; ` +
    backends.map(({ b, lg }) => `${b} ${fmt(cpuMs(lg?.code_exchange), 2)} ms`).join(', ') + '.');
}
