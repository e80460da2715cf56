// The console's lists, end to end: filters by field kind kept in the URL (a reload shows the same
// list), the CSV of the filtered list (downloaded with the token; refused without `export`), a
// bulk transition (dry run, then the real run, failures with their reasons), the entities that
// refer to an entity, and live updates (a second browser sees a change without a reload).

import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { signInApi, type Client } from './api';
import { browserPerTest, newContext, screenshot, seriousViolations } from './browser';
import { signIn, PASSWORD, TENANT } from './signin';

const baseURL = inject('baseURL');
const BASE = `/api/v1/t/${TENANT}/entities`;

const t = browserPerTest(baseURL);

// Logins are rate-limited per account (a burst of 5, then one per 12 s) and the files share one
// server: each user signs in to the API once for the whole file.
const clients = new Map<string, Promise<Client>>();
function apiAs(email: string): Promise<Client> {
  let c = clients.get(email);
  if (!c) {
    c = signInApi(baseURL, TENANT, email, PASSWORD);
    clients.set(email, c);
  }
  return c;
}

interface Entity {
  id: string;
  state: string;
  version: number;
  display?: string;
  data: Record<string, unknown>;
}

/** The demo's richest active customer, a warehouse and the cheapest product. */
async function demoData(api: Client) {
  const customers = await api.ok<{ data: Entity[] }>('GET', `${BASE}/customer?limit=100`);
  const left = (c: Entity) => Number(c.data.credit_limit ?? 0) - Number(c.data.balance ?? 0);
  const customer = [...customers.data].filter((c) => c.state === 'ACTIVE').sort((a, b) => left(b) - left(a))[0];
  const products = await api.ok<{ data: Entity[] }>('GET', `${BASE}/product?limit=100`);
  const product = [...products.data].sort((a, b) => Number(a.data.base_price) - Number(b.data.base_price))[0];
  const warehouse = (await api.ok<{ data: Entity[] }>('GET', `${BASE}/warehouse?limit=1`)).data[0];
  if (!customer || !product || !warehouse) throw new Error('the demo data has changed');
  return { customer, product, warehouse };
}

/** A submitted order (PENDING_APPROVAL) created by `api`'s user. */
async function pending(api: Client, d: Awaited<ReturnType<typeof demoData>>): Promise<Entity> {
  const order = await api.ok<Entity>('POST', `${BASE}/order`, {
    data: { customer_id: d.customer.id, warehouse_id: d.warehouse.id, items: [{ product_id: d.product.id, quantity: 1 }] },
  });
  return (await api.ok<{ entity: Entity }>('POST', `${BASE}/order/${order.id}/transitions/submitOrder`, {})).entity;
}

const count = async (api: Client, query: string) => (await api.ok<{ total: number }>('GET', `${BASE}/order?${query}&total=true&limit=1`)).total;

describe('console lists', () => {
  it('filters by kind in the URL, exports the filtered CSV, and fires a transition in bulk', async () => {
    const page = t.page();
    const sales = await apiAs('sales@chemichemi.test');
    const managerApi = await apiAs('manager@chemichemi.test');
    const d = await demoData(sales);
    const mine = [await pending(sales, d), await pending(sales, d), await pending(managerApi, d)];
    const numbers = mine.map((o) => String(o.data.order_number));

    await signIn(page, { email: 'manager@chemichemi.test', next: `/t/${TENANT}/entities/order` });
    await page.getByRole('heading', { name: 'Order', exact: true }).waitFor();
    const filters = page.getByRole('complementary', { name: 'Filters' });
    // State: a multi-select; the filter is in the URL in the API's syntax.
    // (The panel may re-render as the list's queries settle: click until the box holds.)
    const pendingBox = filters.getByRole('checkbox', { name: 'Pending approval' });
    await expect
      .poll(async () => {
        if (!(await pendingBox.isChecked())) await pendingBox.click();
        return page.url();
      })
      .toMatch(/state%5Bin%5D=PENDING_APPROVAL|state\[in\]=PENDING_APPROVAL/);
    // Customer: a searchable picker showing titles.
    await filters.locator('summary', { hasText: 'Customer' }).click();
    const name = String(d.customer.data.name);
    await filters.getByLabel('Find Customer').fill(name.split(' ')[0] ?? name);
    // Picking an option moves it into the chosen list (another checkbox, checked): click, not
    // check(), which looks at the clicked box afterwards and sometimes found it gone.
    await filters.getByRole('checkbox', { name }).click();
    await page.waitForURL(/customer_id/);
    await expect
      .poll(() => filters.getByRole('list', { name: 'Customer chosen' }).getByRole('checkbox', { name }).isChecked())
      .toBe(true);
    const query = `state[in]=PENDING_APPROVAL&customer_id[in]=${d.customer.id}`;
    const expected = await count(managerApi, query);
    const total = page.getByRole('status').filter({ hasText: /match the filters/ });
    await expect.poll(() => total.textContent()).toBe(`${String(expected)} ${expected === 1 ? 'entity' : 'entities'} match the filters`);
    for (const n of numbers) await page.getByRole('link', { name: n }).waitFor();
    // A range: created from an hour before now (a datetime-local input, sent as RFC 3339).
    const from = new Date(Date.now() - 60 * 60_000);
    const pad = (n: number) => String(n).padStart(2, '0');
    const local = `${String(from.getFullYear())}-${pad(from.getMonth() + 1)}-${pad(from.getDate())}T${pad(from.getHours())}:${pad(from.getMinutes())}`;
    await filters.locator('summary', { hasText: 'Created' }).click();
    await filters.getByLabel('From (Created)').fill(local);
    await filters.getByLabel('From (Created)').press('Enter');
    await page.waitForURL(/created_at%5Bgte%5D=|created_at\[gte\]=/);
    const ranged = await count(managerApi, `${query}&created_at[gte]=${encodeURIComponent(new Date(local).toISOString())}`);
    await expect.poll(() => total.textContent()).toBe(`${String(ranged)} ${ranged === 1 ? 'entity' : 'entities'} match the filters`);
    expect(await seriousViolations(page)).toEqual([]);

    // A shared link (a reload) shows the same list.
    await page.reload();
    await expect.poll(() => page.getByRole('status').filter({ hasText: /match the filters/ }).textContent()).toContain(String(ranged));
    expect(await page.getByRole('complementary', { name: 'Filters' }).getByRole('checkbox', { name: 'Pending approval' }).isChecked()).toBe(true);
    await screenshot(page, 'list-filters');

    // The CSV of the filtered list, fetched with the token.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    expect(download.suggestedFilename()).toBe('order.csv');
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^id,state,version,created_at,/);
    expect(csv.length - 1).toBe(ranged);
    for (const o of mine) expect(csv.some((line) => line.startsWith(`${o.id},PENDING_APPROVAL,`))).toBe(true);

    // Bulk: the three orders selected; a dry run first, nothing changes; then the real run.
    for (const n of numbers) await page.getByRole('checkbox', { name: `Select ${n}` }).check();
    const bulk = page.getByRole('region', { name: 'Bulk: 3 selected' });
    await bulk.getByLabel('Transition').selectOption('approveOrder');
    const run = bulk.getByRole('button', { name: 'Run Approve order on 3' });
    expect(await run.isDisabled()).toBe(true);
    await bulk.getByRole('button', { name: 'Dry run' }).click();
    await bulk.getByRole('status').filter({ hasText: 'Dry run: done; 2 would succeed, 1 would fail. Nothing was changed.' }).waitFor();
    // The manager created the third: four-eyes refuses it, with the reason and a link to it.
    const wouldFail = bulk.getByRole('list', { name: 'Would fail' });
    await wouldFail.getByRole('link', { name: numbers[2] }).waitFor();
    expect((await managerApi.ok<Entity>('GET', `${BASE}/order/${mine[0]?.id ?? ''}`)).state).toBe('PENDING_APPROVAL');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'bulk-dry-run');
    await run.click();
    await bulk.getByRole('status').filter({ hasText: 'Approve order: done; 2 succeeded, 1 failed.' }).waitFor();
    const failures = bulk.getByRole('list', { name: 'Failures' });
    await failures.getByRole('link', { name: numbers[2] }).waitFor();
    expect(await failures.textContent()).toMatch(/four-eyes|created/i);
    const states = await Promise.all(mine.map(async (o) => (await managerApi.ok<Entity>('GET', `${BASE}/order/${o.id}`)).state));
    expect(states).toEqual(['APPROVED', 'APPROVED', 'PENDING_APPROVAL']);
    // The list follows: the approved ones are no longer pending.
    await expect.poll(() => page.getByRole('link', { name: numbers[0] }).count()).toBe(0);

    // "All matching": a dry run over the filter reports every entity it matches.
    await page.getByRole('checkbox', { name: 'Select all on this page' }).check();
    await page.getByRole('button', { name: /^Select all \d+ matching$/ }).click();
    const all = page.getByRole('region', { name: /^Bulk: all \d+ matching$/ });
    await all.getByLabel('Transition').selectOption('rejectOrder');
    await all.getByRole('button', { name: 'Dry run' }).click();
    const report = all.getByRole('status').filter({ hasText: /^Dry run: done;/ });
    await report.waitFor();
    const matching = Number(/all (\d+) matching/.exec((await all.getByRole('heading').textContent()) ?? '')?.[1]);
    const [would, wouldNot] = [...((await report.textContent()) ?? '').matchAll(/(\d+) would/g)].map((m) => Number(m[1]));
    expect(matching).toBeGreaterThan(0);
    expect((would ?? 0) + (wouldNot ?? 0)).toBe(matching);
    expect(await all.getByRole('alert').count()).toBe(0);
  });

  it('offers no CSV export nor create without the permission; reads date and text filters from a link', async () => {
    const page = t.page();
    await signIn(page, { email: 'warehouse@chemichemi.test', next: `/t/${TENANT}/entities/order` });
    await page.getByRole('heading', { name: 'Order', exact: true }).waitFor();
    await page.getByRole('status').filter({ hasText: /match the filters|entities/ }).first().waitFor();
    expect(await page.getByRole('button', { name: 'Export CSV' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'New Order' }).count()).toBe(0);

    // Other kinds from a shared link: a date range and a text field (trips), read back into the
    // filters and accepted by the server (a user field takes `me`).
    const query = 'scheduled_date%5Bgte%5D=2026-01-01&scheduled_date%5Blte%5D=2026-12-31&driver_id=me';
    await page.goto(`/studio/t/${TENANT}/entities/trip?${query}`);
    await page.getByRole('heading', { name: 'Trip', exact: true }).waitFor();
    await page.getByRole('status').filter({ hasText: /match the filters/ }).waitFor();
    const filters = page.getByRole('complementary', { name: 'Filters' });
    expect(await filters.getByLabel('From (Scheduled date)').inputValue()).toBe('2026-01-01');
    expect(await filters.getByLabel('To (Scheduled date)').inputValue()).toBe('2026-12-31');
    expect(await filters.getByLabel('Driver equals').inputValue()).toBe('me');
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('status').filter({ hasText: /^\d+ entit(y|ies)$/ }).waitFor();
    expect(page.url()).not.toContain('scheduled_date');
  });

  it('names a stock level by the titles of its product and warehouse', async () => {
    const page = t.page();
    await signIn(page, { email: 'warehouse@chemichemi.test', next: `/t/${TENANT}/entities/inventory` });
    await page.getByRole('heading', { name: 'Stock level', exact: true }).waitFor();
    // The type's title is "Stock of {{ product_id | title_of }} in {{ warehouse_id | title_of }}".
    const title = 'Stock of LPG-6KG-R LPG 6 kg refill in NBO-MAIN Nairobi Main Depot';
    const link = page.getByRole('link', { name: title, exact: true });
    await link.waitFor();
    expect(await page.getByRole('link', { name: /^Stock of [0-9a-f]{8}-/ }).count()).toBe(0);
    // Each product and warehouse cell names its entity by title once read (its id until then):
    // the picture waits for all of them.
    await expect
      .poll(() => page.getByRole('table').getByRole('link', { name: /^[0-9a-f]{8}-[0-9a-f]{4}-/ }).count())
      .toBe(0);
    await screenshot(page, 'stock-levels');
    await link.click();
    await page.getByRole('heading', { name: `Stock level ${title}` }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('shows the entities that refer to an entity, with links', async () => {
    const page = t.page();
    const sales = await apiAs('sales@chemichemi.test');
    const d = await demoData(sales);
    const order = await pending(sales, d);
    const number = String(order.data.order_number);
    await signIn(page, { email: 'dispatcher@chemichemi.test', next: `/t/${TENANT}/entities/order/${order.id}` });
    await page.getByRole('heading', { name: `Order ${number}` }).waitFor();
    // The order's customer, then the customer's orders (order.customer_id refers to it).
    await page.getByRole('link', { name: String(d.customer.data.name) }).first().click();
    await page.getByRole('heading', { name: `Customer ${String(d.customer.data.name)}` }).waitFor();
    const related = page.getByRole('region', { name: 'Related' });
    const orders = related.getByRole('list', { name: /^Order by Customer/ });
    await orders.getByRole('link', { name: number }).waitFor();
    // The customer's heading and its related orders fit the first screen; scrolling the whole
    // region into view shifted the page by a few pixels and cut the navigation bar in half.
    await page.evaluate(() => {
      window.scrollTo(0, 0);
    });
    await orders.getByRole('link', { name: number }).scrollIntoViewIfNeeded();
    await screenshot(page, 'related');
    const all = orders.getByRole('link', { name: /^All \d+ Order$/ });
    if ((await all.count()) > 0) {
      await all.click();
      await page.waitForURL(/customer_id/);
      await page.getByRole('status').filter({ hasText: /match the filters/ }).waitFor();
    } else {
      await orders.getByRole('link', { name: number }).click();
      await page.getByRole('heading', { name: `Order ${number}` }).waitFor();
    }
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('updates a list, the inbox and an open entity within two seconds, without a reload', async () => {
    const sales = await apiAs('sales@chemichemi.test');
    const d = await demoData(sales);
    const order = await pending(sales, d);
    const number = String(order.data.order_number);
    const open = async (email: string, next: string) => {
      const context = await newContext(t.browser(), baseURL);
      const p = await context.newPage();
      await signIn(p, { email, next });
      return { context, p };
    };
    // Each page marks its window: a reload would lose the mark.
    const mark = (p: Page) =>
      p.evaluate(() => {
        (window as unknown as { unreloaded?: boolean }).unreloaded = true;
      });
    const marked = (p: Page) => p.evaluate(() => (window as unknown as { unreloaded?: boolean }).unreloaded === true);

    const list = await open('dispatcher@chemichemi.test', `/t/${TENANT}/entities/order`);
    const row = list.p.getByRole('row').filter({ has: list.p.getByRole('link', { name: number }) });
    await row.getByText('Pending approval').waitFor();
    const inbox = await open('manager2@chemichemi.test', `/t/${TENANT}`);
    const waiting = inbox.p.getByRole('region', { name: /^Order: Approve order/ }).getByRole('link', { name: number });
    await waiting.waitFor();
    const watcher = await open('admin@chemichemi.test', `/t/${TENANT}/entities/order/${order.id}`);
    await watcher.p.getByRole('heading', { name: `Order ${number}` }).waitFor();
    expect(await watcher.p.getByLabel('State').textContent()).toBe('Pending approval');
    for (const p of [list.p, inbox.p, watcher.p]) await mark(p);
    // Give the pages' streams a moment to connect: they start at the end of the stream.
    await new Promise((r) => setTimeout(r, 500));

    // The first browser approves it.
    const page = t.page();
    await signIn(page, { email: 'manager@chemichemi.test', next: `/t/${TENANT}/entities/order/${order.id}` });
    await page.getByRole('button', { name: 'Approve order' }).click();
    await page.getByRole('status').filter({ hasText: 'Approve order: now Approved.' }).waitFor();

    await row.getByText('Approved', { exact: true }).waitFor({ timeout: 2000 });
    await expect.poll(() => waiting.count(), { timeout: 2000 }).toBe(0);
    await expect.poll(() => watcher.p.getByLabel('State').textContent(), { timeout: 2000 }).toBe('Approved');
    await watcher.p.getByRole('list', { name: 'History' }).getByText('Approve order').waitFor({ timeout: 2000 });
    await screenshot(list.p, 'list-live');
    for (const p of [list.p, inbox.p, watcher.p]) expect(await marked(p)).toBe(true);
    expect(await seriousViolations(list.p)).toEqual([]);
    for (const c of [list, inbox, watcher]) await c.context.close();
  });
});
