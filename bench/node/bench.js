'use strict';
// Drives bench/node/server.js with autocannon: each variant once, after a short warm-up of each;
// requests cycle through every tenant. Prints a markdown table.
//   node bench.js SECONDS CONNECTIONS   (PG*, BENCH_PASSWORD and PORT from bench/node_client.sh)
const path = require('node:path');
const { spawn } = require('node:child_process');
const http = require('node:http');
const autocannon = require('autocannon');
const { Pool } = require('pg');

const seconds = Number(process.argv[2] || 10);
const connections = Number(process.argv[3] || 16);
const port = Number(process.env.PORT);
const variants = [
  ['client', '/client/projects', 'pg-tenant tenantMiddleware (BEGIN + tenant.set in one round trip)'],
  ['twotrips', '/twotrips/projects', 'BEGIN, then tenant.set($1): two round trips'],
  ['seed', '/seed/projects', 'seed middleware: look-up + interpolated SET LOCAL'],
];

function get(url, tenant) {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}${url}`, { headers: { 'x-tenant': tenant } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

function load(url, ids, duration) {
  let next = 0;
  return autocannon({
    url: `http://127.0.0.1:${port}${url}`,
    connections,
    duration,
    requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-tenant': ids[next++ % ids.length] } }) }],
  });
}

async function main() {
  const admin = new Pool({ max: 1 });
  const ids = (await admin.query('SELECT id FROM tenant.tenants ORDER BY slug')).rows.map((r) => r.id);
  await admin.end();

  const server = spawn(process.execPath, [path.join(__dirname, 'server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  try {
    // Same answer from every variant, and a different one for another tenant.
    const answers = await Promise.all(variants.map(([, url]) => get(url, ids[0])));
    if (answers.some((a) => a.status !== 200 || a.body !== answers[0].body) || JSON.parse(answers[0].body).length !== 20) {
      throw new Error('the variants do not answer alike: ' + JSON.stringify(answers).slice(0, 300));
    }
    if ((await get(variants[0][1], ids[1])).body === answers[0].body) throw new Error('two tenants answered alike');

    for (const [name, url] of variants) {
      const warm = await load(url, ids, 2);
      console.error(`warm-up ${name}: ${warm.requests.average} req/s`);
    }
    const rows = [];
    for (const [name, url, what] of variants) {
      const r = await load(url, ids, seconds);
      if (r.errors || r.non2xx) throw new Error(`${name}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
      rows.push({ name, what, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total });
      console.error(`${name}: ${r.requests.average} req/s`);
    }
    const seed = rows.find((r) => r.name === 'seed').rps;
    console.log(`\nnode ${process.version}, ${require('node:os').cpus().length} cores, autocannon ${connections} connections, ${seconds} s per variant, pools of 8, one run\n`);
    console.log('| variant | what | req/s (mean) | p50 ms | p99 ms | requests | ratio to seed |');
    console.log('|---|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.what} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.total} | ${(r.rps / seed).toFixed(2)} |`);
    }
  } finally {
    server.kill('SIGTERM');
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
