// The designer's benchmark (`npm run bench:designer`, part of `make bench`): a generated
// workflow of 60 states and 150 transitions put in a draft of the demo server, then, in
// headless Chromium:
//   - the first layout and render of the designer (navigation until 60 states are drawn),
//     against a baseline measured in the same browser: the tenant's home page (types list);
//   - the validation round trip of that package (POST config/validate, as the designer does
//     after every edit), against a baseline: GET /healthz on the same server;
//   - the studio's initial JavaScript (the index chunk, gzipped) and the designer's chunks.
// It prints a report (and writes it to target/bench-designer.md). Not a test: nothing fails on
// a slow machine; the figures are read against their baselines.

import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { signInApi } from './api';
import { launch, newContext } from './browser';
import { repoDir, startServer, studioDir } from './server';

const TENANT = 'chemichemi';
const PASSWORD = 'switchyard-demo';
const RUNS = Number(process.env.BENCH_DESIGNER_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** 60 states in a chain with branches; 150 transitions (every state has 2–3 ways out). */
function bigWorkflow() {
  const n = 60;
  const name = (i: number) => `S${String(i).padStart(2, '0')}`;
  const states: Record<string, unknown> = {};
  for (let i = 0; i < n; i += 1) states[name(i)] = i === 0 ? { kind: 'initial' } : i === n - 1 ? { kind: 'terminal' } : {};
  const transitions: Record<string, unknown> = {};
  let count = 0;
  for (let i = 0; i < n - 1 && count < 150; i += 1) {
    transitions[`next${String(i)}`] = { from: [name(i)], to: name(i + 1), roles: ['admin'] };
    count += 1;
    if (i + 5 < n && count < 150) {
      transitions[`skip${String(i)}`] = { from: [name(i)], to: name(i + 5), roles: ['admin'] };
      count += 1;
    }
    if (i > 2 && count < 150) {
      transitions[`back${String(i)}`] = { from: [name(i)], to: name(i - 3), roles: ['admin'] };
      count += 1;
    }
  }
  for (let i = 1; count < 150; i += 7) {
    transitions[`jump${String(i)}`] = { from: [name(i % (n - 1))], to: name((i * 3) % (n - 1)), roles: ['admin'] };
    count += 1;
  }
  return { states, transitions };
}

function chunkSizes() {
  const assets = join(studioDir, 'dist/assets');
  const html = readFileSync(join(studioDir, 'dist/index.html'), 'utf8');
  const initial = [...html.matchAll(/assets\/([^"]+\.js)/g)].map((m) => m[1] ?? '');
  const size = (f: string) => gzipSync(readFileSync(join(assets, f))).length;
  const all = readdirSync(assets).filter((f) => f.endsWith('.js'));
  return {
    initial: initial.reduce((s, f) => s + size(f), 0),
    chunks: all.map((f) => [f.replace(/-[\w-]{8}\.js$/, ''), size(f)] as const).sort((a, b) => b[1] - a[1]),
  };
}

async function main() {
  const server = await startServer();
  const browser = await launch();
  try {
    const admin = await signInApi(server.baseURL, TENANT, 'admin@chemichemi.test', PASSWORD);
    const draft = await admin.ok<{ version: number; package: { types: { name: string; workflow?: unknown }[] } }>(
      'GET',
      `/api/v1/t/${TENANT}/config/draft`,
    );
    const pkg = draft.package;
    const big = { name: 'bench_flow', label: 'Bench flow', fields: { note: { type: 'string' } }, workflow: bigWorkflow() };
    pkg.types = [...pkg.types.filter((t) => t.name !== 'bench_flow'), big];
    await admin.ok('PUT', `/api/v1/t/${TENANT}/config/draft`, { version: draft.version, package: pkg });

    const context = await newContext(browser, server.baseURL);
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    await page.goto(`/studio/login?next=${encodeURIComponent(`/t/${TENANT}`)}`);
    await page.getByLabel('Tenant').fill(TENANT);
    await page.getByLabel('Email').fill('admin@chemichemi.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('list', { name: 'Entity types' }).waitFor();

    const home: number[] = [];
    const designer: number[] = [];
    for (let i = 0; i < RUNS; i += 1) {
      let t = performance.now();
      await page.goto(`/studio/t/${TENANT}`);
      await page.getByRole('list', { name: 'Entity types' }).getByRole('listitem').first().waitFor();
      home.push(performance.now() - t);
      t = performance.now();
      await page.goto(`/studio/t/${TENANT}/design/types/bench_flow/workflow`);
      await page.waitForFunction(() => document.querySelectorAll('[aria-roledescription="node"]').length >= 60);
      designer.push(performance.now() - t);
    }

    const health: number[] = [];
    const validate: number[] = [];
    for (let i = 0; i < RUNS * 4; i += 1) {
      let t = performance.now();
      await fetch(`${server.baseURL}/healthz`);
      health.push(performance.now() - t);
      t = performance.now();
      await admin.ok('POST', `/api/v1/t/${TENANT}/config/validate`, pkg);
      validate.push(performance.now() - t);
    }
    await admin.ok('DELETE', `/api/v1/t/${TENANT}/config/draft`);

    const sizes = chunkSizes();
    const kb = (b: number) => `${(b / 1024).toFixed(0)} KB`;
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    const report = [
      `# Designer benchmark (${new Date().toISOString().slice(0, 10)}, ${String(RUNS)} runs, medians)`,
      '',
      '| measure | value | baseline | ratio |',
      '| --- | --- | --- | --- |',
      `| first layout and render, 60 states / 150 transitions (navigation to 60 states drawn) | ${ms(median(designer))} | home page ${ms(median(home))} | ${(median(designer) / median(home)).toFixed(1)}× |`,
      `| validation round trip of the package (POST config/validate) | ${ms(median(validate))} | GET /healthz ${ms(median(health))} | ${(median(validate) / median(health)).toFixed(1)}× |`,
      `| initial JavaScript (index chunk, gzipped) | ${kb(sizes.initial)} | target 500 KB | ${(sizes.initial / (500 * 1024)).toFixed(2)} |`,
      '',
      'Chunks, gzipped: ' + sizes.chunks.map(([n, s]) => `${n} ${kb(s)}`).join(', '),
      '',
    ].join('\n');
    console.log(report);
    mkdirSync(join(repoDir, 'target'), { recursive: true });
    writeFileSync(join(repoDir, 'target/bench-designer.md'), report);
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
