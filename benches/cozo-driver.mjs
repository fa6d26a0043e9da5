// Login driver for ../shared/peers/loadgen.mjs (`--driver benches/cozo-driver.mjs`): cozo-broker's
// digital-key login, as a browser does it:
//   authorize -> 303 /login (chooser) -> GET /login/key (form, hidden csrf)
//   -> POST /login/key csrf,username,password -> 303 /login/key/code -> GET (form, csrf)
//   -> POST /login/key/code csrf,method=totp,code -> 303 redirect_uri?code=...
//
// Accounts come from the file named by COZO_BENCH_ACCOUNTS (one per line: username, password,
// base32 TOTP secret; tab- or space-separated; benches/run.sh writes it). A TOTP time step is
// accepted once per key, so each account is used at most once per 30 s step; when every account
// was used in the current step, the login waits for the next one (counted, printed at exit).
// Unless COZO_BENCH_FRESH=1, the accounts are taken as used in the step the driver starts in
// (another generator may just have used them).
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

const STEP_S = 30;
const stepNow = () => Math.floor(Date.now() / 1000 / STEP_S);

function base32(s) {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out = [];
  let bits = 0;
  let val = 0;
  for (const c of s.trim().replace(/=+$/, '').toUpperCase()) {
    const i = A.indexOf(c);
    if (i < 0) throw new Error(`cozo-driver: secret is not base32: ${s}`);
    val = (val << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((val >> bits) & 0xff);
      val &= (1 << bits) - 1;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: HMAC-SHA1, 6 digits, 30 s steps (RFC 4226 dynamic truncation). */
export function totp(key, unixSeconds) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / STEP_S)));
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

const FILE = process.env.COZO_BENCH_ACCOUNTS;
if (!FILE) throw new Error('cozo-driver: set COZO_BENCH_ACCOUNTS to the accounts file');
const start = process.env.COZO_BENCH_FRESH === '1' ? -Infinity : stepNow();
const accounts = readFileSync(FILE, 'utf8').split('\n')
  .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const [username, password, secret] = l.includes('\t') ? l.split('\t') : l.split(/\s+/);
    return { username, password, key: base32(secret), last: start, busy: false };
  });
if (!accounts.length) throw new Error(`cozo-driver: no accounts in ${FILE}`);

let cursor = 0;
let logins = 0;
let waits = 0;
let waitedMs = 0;
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

async function acquire() {
  for (;;) {
    const step = stepNow();
    for (let k = 0; k < accounts.length; k += 1) {
      const i = (cursor + k) % accounts.length;
      const a = accounts[i];
      if (!a.busy && a.last < step) {
        a.busy = true;
        a.last = step;
        cursor = (i + 1) % accounts.length;
        return a;
      }
    }
    waits += 1;
    const ms = STEP_S * 1000 - (Date.now() % (STEP_S * 1000)) + 50;
    waitedMs += ms;
    await sleep(ms);
  }
}

process.on('exit', () => {
  process.stderr.write(`[cozo-driver] ${logins} logins over ${accounts.length} accounts; ${waits} waits for a fresh TOTP step (${(waitedMs / 1000).toFixed(1)} s summed over the waiting logins)\n`);
});

const csrfOf = (res) => {
  const m = res.body.match(/<input[^>]*name="csrf"[^>]*value="([^"]*)"/) ?? res.body.match(/<input[^>]*value="([^"]*)"[^>]*name="csrf"/);
  if (!m) throw new Error(`cozo-driver: no csrf at ${res.url}: HTTP ${res.status}`);
  return m[1];
};

function redirect(res, what) {
  if (res.status < 300 || res.status >= 400 || !res.headers.location) {
    throw new Error(`cozo-driver: ${what}: HTTP ${res.status} ${res.body.slice(0, 160).replace(/\s+/g, ' ')}`);
  }
  return new URL(res.headers.location, res.url).href;
}

export default async function cozoLogin({ browser, response, isRedirectTarget }) {
  const first = redirect(response, 'authorize');
  if (isRedirectTarget(first)) return first; // answered from a live session (not expected)
  const a = await acquire();
  try {
    let res = await browser.go('GET', first); // the chooser
    if (res.status !== 200) throw new Error(`cozo-driver: chooser: HTTP ${res.status}`);
    res = await browser.go('GET', new URL('/login/key', res.url).href);
    const body1 = new URLSearchParams({ csrf: csrfOf(res), username: a.username, password: a.password });
    res = await browser.go('POST', new URL('/login/key', res.url).href, body1.toString());
    res = await browser.go('GET', redirect(res, 'password'));
    const csrf = csrfOf(res);
    const now = Date.now() / 1000;
    a.last = Math.max(a.last, Math.floor(now / STEP_S));
    const body2 = new URLSearchParams({ csrf, method: 'totp', code: totp(a.key, now) });
    res = await browser.go('POST', new URL('/login/key/code', res.url).href, body2.toString());
    const final = redirect(res, 'code');
    if (!isRedirectTarget(final)) throw new Error(`cozo-driver: code step went to ${final}`);
    logins += 1;
    return final;
  } finally {
    a.busy = false;
  }
}
