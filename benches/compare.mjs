#!/usr/bin/env node
// Side-by-side table of loadgen.mjs results: the peer first, then cozo-broker runs.
//   node benches/compare.mjs PEER.json "cozo SQLite=a.json" ["cozo PostgreSQL=b.json" ...]
// Prints a markdown table: each figure, the ratio cozo/peer, and the product goal (>= 2x the peer
// on refresh, code exchange, jwks and discovery; logins are not compared: the peer hashes no
// password).
import { readFileSync } from 'node:fs';

const [peerFile, ...rest] = process.argv.slice(2);
if (!peerFile || !rest.length) {
  console.error('usage: compare.mjs PEER.json LABEL=COZO.json [LABEL=COZO.json ...]');
  process.exit(2);
}
const load = (f) => JSON.parse(readFileSync(f, 'utf8')).results;
const peer = load(peerFile);
const runs = rest.map((a) => { const i = a.indexOf('='); return { label: a.slice(0, i), r: load(a.slice(i + 1)) }; });

const rows = [
  ['refresh_token grants/s', (r) => r.refresh?.per_s, true],
  ['refresh p99 ms', (r) => r.refresh?.p99_ms, false],
  ['refresh server cores', (r) => r.refresh?.cpu?.server_cores, false],
  ['code exchanges/s (bursts)', (r) => r.code_exchange?.per_s, true],
  ['code exchange p99 ms', (r) => r.code_exchange?.p99_ms, false],
  ['code server cores', (r) => r.code_exchange?.cpu?.server_cores, false],
  ['complete logins/s', (r) => r.login_flow?.per_s, false],
  ['login p99 ms', (r) => r.login_flow?.p99_ms, false],
  ['GET jwks/s', (r) => r.jwks?.per_s, true],
  ['jwks server cores', (r) => r.jwks?.cpu?.server_cores, false],
  ['GET discovery/s', (r) => r.discovery?.per_s, true],
  ['discovery server cores', (r) => r.discovery?.cpu?.server_cores, false],
  ['cores outside server + generator (refresh; on PostgreSQL: the database)', (r) => (r.refresh?.cpu ? r.refresh.cpu.machine_busy_cores - r.refresh.cpu.loadgen_cores - (r.refresh.cpu.server_cores ?? 0) : undefined), false],
  ['errors (refresh+code+login+jwks+disc)', (r) => ['refresh', 'code_exchange', 'login_flow', 'jwks', 'discovery']
    .reduce((s, k) => s + (r[k]?.errors ?? 0), 0), false],
];

const fmt = (x) => {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : String(+x.toFixed(2));
};
const head = ['measure', 'oidc-provider (peer)', ...runs.flatMap(({ label }) => [label, `${label} / peer`]), 'goal >= 2x peer'];
console.log(`| ${head.join(' | ')} |`);
console.log(`| ${head.map((_, i) => (i ? '---:' : '---')).join(' | ')} |`);
for (const [name, get, goal] of rows) {
  const p = get(peer);
  const cells = [name, fmt(p)];
  const verdicts = [];
  for (const { label, r } of runs) {
    const v = get(r);
    const ratio = typeof v === 'number' && typeof p === 'number' && p > 0 ? v / p : undefined;
    cells.push(fmt(v), ratio === undefined || /^(errors|cores outside)/.test(name) ? '-' : `${ratio.toFixed(2)}x`);
    if (goal && ratio !== undefined) verdicts.push(`${label}: ${ratio >= 2 ? 'met' : 'not met'}`);
  }
  cells.push(goal ? verdicts.join('; ') : '');
  console.log(`| ${cells.join(' | ')} |`);
}
for (const { label, r } of [{ label: 'oidc-provider', r: peer }, ...runs]) {
  if (r.verify) console.log(`\n${label} verify: ${JSON.stringify(r.verify)}`);
}
