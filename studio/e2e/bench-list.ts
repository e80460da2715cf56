// The console list's benchmark (`npm run bench:list`, `make bench-studio`): the demo server with
// 100,000 more orders in the chemichemi tenant, written by one `insert … select
// generate_series` over the embedded cluster's socket (psql, as the cluster's owner: not row by
// row over HTTP), then, in headless Chromium (1280×800), signed in as the manager:
//   - the order list, from navigation until its first rows are visible (a usable list), and
//     until its total is shown; the same with a filter and a sort (`state[in]=PENDING_APPROVAL&
//     sort=created_at`);
//   - the baseline: the tenant's home page in the same browser (until the types are listed);
//   - the server's time of the list's first page (GET …/entities/order?limit=50&total=true),
//     measured from Node, against GET /healthz.
// The first navigation (cold: nothing cached) is given apart from the median of the others.
// Prints a report and writes it to target/bench-list.md. Not a test: nothing fails on a slow
// machine.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signInApi } from './api';
import { launch, newContext } from './browser';
import { repoDir, startServer } from './server';

const TENANT = 'chemichemi';
const PASSWORD = 'switchyard-demo';
const ORDERS = Number(process.env.BENCH_LIST_ORDERS ?? 100_000);
const RUNS = Number(process.env.BENCH_LIST_RUNS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** The orders, in one statement: states in thirds, the demo's customers and warehouses. */
function seed(home: string): number {
  const sql = `
    insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by)
    select t.id, gen_random_uuid(), 'order', (array['PENDING_APPROVAL','APPROVED','DELIVERED'])[1 + g % 3],
           jsonb_build_object('order_number', 'BULK-' || lpad(g::text, 6, '0'),
                              'customer_id', c.ids[1 + g % cardinality(c.ids)],
                              'warehouse_id', w.ids[1 + g % cardinality(w.ids)],
                              'items', '[]'::jsonb, 'total_amount', (g * 7919) % 10000),
           1, v.version, now() - make_interval(secs => g), now() - make_interval(secs => g), 'bulk', 'bulk'
    from generate_series(1, ${String(ORDERS)}) g
    cross join (select id from tenants where slug = '${TENANT}') t
    cross join lateral (select max(version) as version from config_versions where tenant_id = t.id) v
    cross join lateral (select array_agg(id) as ids from entities where tenant_id = t.id and type = 'customer') c
    cross join lateral (select array_agg(id) as ids from entities where tenant_id = t.id and type = 'warehouse') w;
    analyze entities;`;
  const started = performance.now();
  const psql = spawnSync('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-h', join(home, 'pgdata'), '-U', 'switchyard', '-d', 'switchyard', '-c', sql], {
    encoding: 'utf8',
  });
  if (psql.status !== 0) throw new Error(`psql failed (${String(psql.status)}): ${psql.stderr}${psql.error?.message ?? ''}`);
  return performance.now() - started;
}

async function main() {
  const server = await startServer();
  const browser = await launch();
  try {
    const seconds = seed(server.home) / 1000;
    const manager = await signInApi(server.baseURL, TENANT, 'manager@chemichemi.test', PASSWORD);
    const { total } = await manager.ok<{ total: number }>('GET', `/api/v1/t/${TENANT}/entities/order?limit=1&total=true`);

    const context = await newContext(browser, server.baseURL);
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    const failed: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${String(r.status())} ${r.url()}`);
    });
    await page.goto(`/studio/login?next=${encodeURIComponent(`/t/${TENANT}`)}`);
    await page.getByLabel('Tenant').fill(TENANT);
    await page.getByLabel('Email').fill('manager@chemichemi.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('list', { name: 'Entity types' }).waitFor();

    const lists = {
      plain: `/studio/t/${TENANT}/entities/order`,
      filtered: `/studio/t/${TENANT}/entities/order?${new URLSearchParams({ 'state[in]': 'PENDING_APPROVAL', sort: 'created_at' }).toString()}`,
    };
    type Figures = { rows: number[]; total: number[] };
    const measured: Record<keyof typeof lists, Figures> = { plain: { rows: [], total: [] }, filtered: { rows: [], total: [] } };
    const cold: Record<keyof typeof lists, number> = { plain: 0, filtered: 0 };
    const home: number[] = [];
    for (let i = 0; i <= RUNS; i += 1) {
      let t = performance.now();
      await page.goto(`/studio/t/${TENANT}`);
      await page.getByRole('list', { name: 'Entity types' }).getByRole('listitem').first().waitFor();
      if (i > 0) home.push(performance.now() - t);
      for (const key of Object.keys(lists) as (keyof typeof lists)[]) {
        t = performance.now();
        await page.goto(lists[key]);
        await page
          .locator('table.list tbody tr')
          .first()
          .waitFor()
          .catch(async (e: unknown) => {
            const text = (await page.locator('body').innerText()).slice(0, 2000);
            throw new Error(`no rows on ${lists[key]}: ${String(e)}\nfailed requests: ${failed.join(', ')}\npage: ${text}`);
          });
        const rows = performance.now() - t;
        await page.getByRole('status').filter({ hasText: /^\d+ entit(y|ies)( match the filters)?$/ }).waitFor();
        const withTotal = performance.now() - t;
        if (i === 0) cold[key] = rows;
        else {
          measured[key].rows.push(rows);
          measured[key].total.push(withTotal);
        }
      }
    }

    const server_ms: Record<string, number[]> = { plain: [], filtered: [], health: [] };
    const api = {
      plain: `/api/v1/t/${TENANT}/entities/order?limit=50&total=true`,
      filtered: `/api/v1/t/${TENANT}/entities/order?state[in]=PENDING_APPROVAL&sort=created_at&limit=50&total=true`,
    };
    for (let i = 0; i < RUNS * 3; i += 1) {
      for (const key of ['plain', 'filtered'] as const) {
        const t = performance.now();
        await manager.ok('GET', api[key]);
        server_ms[key]?.push(performance.now() - t);
      }
      const t = performance.now();
      await fetch(`${server.baseURL}/healthz`);
      server_ms.health?.push(performance.now() - t);
    }

    const ms = (x: number) => `${x.toFixed(0)} ms`;
    const row = (name: string, key: keyof typeof lists) =>
      `| ${name} | ${ms(median(measured[key].rows))} (cold ${ms(cold[key])}) | ${ms(median(measured[key].total))} | home page ${ms(median(home))} | ${(median(measured[key].rows) / median(home)).toFixed(1)}× |`;
    const report = [
      `# Console list benchmark (${new Date().toISOString().slice(0, 10)}, ${String(total)} orders, ${String(RUNS)} runs, medians)`,
      '',
      `${String(ORDERS)} orders written in ${seconds.toFixed(1)} s (one insert … select, then analyze).`,
      '',
      '| list page in Chromium, from navigation | first rows visible | with the total | baseline | ratio |',
      '| --- | --- | --- | --- | --- |',
      row('orders, newest first', 'plain'),
      row('orders, `state[in]=PENDING_APPROVAL`, `sort=created_at`', 'filtered'),
      '',
      '| API round trip (50 rows and the total) | time | baseline |',
      '| --- | --- | --- |',
      `| \`${api.plain}\` | ${ms(median(server_ms.plain ?? []))} | GET /healthz ${ms(median(server_ms.health ?? []))} |`,
      `| \`${api.filtered}\` | ${ms(median(server_ms.filtered ?? []))} | GET /healthz ${ms(median(server_ms.health ?? []))} |`,
      '',
      `${median(measured.plain.rows) < 1000 && median(measured.filtered.rows) < 1000 ? 'PASS' : 'MISS'} (a usable list in under one second)`,
      '',
    ].join('\n');
    console.log(report);
    mkdirSync(join(repoDir, 'target'), { recursive: true });
    writeFileSync(join(repoDir, 'target/bench-list.md'), report);
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
