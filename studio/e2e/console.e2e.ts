// The console, end to end: a sales user finds an order in the list (search, sort in the URL),
// opens it, submits it with its button, sees approveOrder disabled with the reason, and the
// history names every step with its actor; a manager then approves it.

import type { Page } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { signInApi } from './api';
import { browserPerTest, newContext, screenshot, seriousViolations } from './browser';

const baseURL = inject('baseURL');
const TENANT = 'chemichemi';
const PASSWORD = 'switchyard-demo';

const t = browserPerTest(baseURL);

async function signIn(p: Page, email: string, next: string): Promise<void> {
  await p.goto(`/studio/login?next=${encodeURIComponent(next)}`);
  await p.getByLabel('Tenant').fill(TENANT);
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

interface Entity {
  id: string;
  state: string;
  data: Record<string, unknown>;
}

describe('the console', () => {
  it('lists, opens and moves an order, with reasons and history', async () => {
    const page = t.page();
    const sales = await signInApi(baseURL, TENANT, 'sales@chemichemi.test', PASSWORD);
    const base = `/api/v1/t/${TENANT}/entities`;
    const first = async (type: string) => (await sales.ok<{ data: Entity[] }>('GET', `${base}/${type}?limit=1`)).data[0]?.id;
    // The customer with the most credit left (approveOrder checks the credit limit).
    const richest = async () => {
      const list = await sales.ok<{ data: Entity[] }>('GET', `${base}/customer?limit=100`);
      const left = (c: Entity) => Number(c.data.credit_limit ?? 0) - Number(c.data.balance ?? 0);
      return [...list.data].filter((c) => c.state === 'ACTIVE').sort((a, b) => left(b) - left(a))[0]?.id;
    };
    const cheapest = async () => {
      const list = await sales.ok<{ data: Entity[] }>('GET', `${base}/product?limit=100`);
      return [...list.data].sort((a, b) => Number(a.data.base_price) - Number(b.data.base_price))[0]?.id;
    };
    const order = await sales.ok<Entity>('POST', `${base}/order`, {
      data: {
        customer_id: await richest(),
        warehouse_id: await first('warehouse'),
        items: [{ product_id: await cheapest(), quantity: 2 }],
        notes: 'console e2e',
      },
    });
    const number = String(order.data.order_number);

    await signIn(page, 'sales@chemichemi.test', `/t/${TENANT}`);
    await page.getByRole('list', { name: 'Entity types' }).getByRole('link', { name: 'Order', exact: true }).click();
    await page.getByRole('heading', { name: 'Order' }).waitFor();
    await page.getByRole('status').filter({ hasText: /entit/ }).waitFor();
    // Search, kept in the URL.
    await page.getByLabel('Search').fill(number);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=/);
    const link = page.getByRole('link', { name: number });
    await link.waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'list');

    // Keyboard only: from the list to the entity, then its transition.
    await link.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: `Order ${number}` }).waitFor();
    expect(await page.getByLabel('State').textContent()).toBe('DRAFT');
    const submit = page.getByRole('button', { name: 'submitOrder' });
    await submit.focus();
    await page.keyboard.press('Enter');
    const answer = page.getByRole('status').filter({ hasText: /^submitOrder/ }).or(page.getByRole('alert'));
    await answer.first().waitFor();
    expect(await answer.first().textContent()).toBe('submitOrder: now PENDING_APPROVAL.');
    await expect.poll(() => page.getByLabel('State').textContent()).toBe('PENDING_APPROVAL');

    // What sales may not do, and why.
    const approve = page.getByRole('button', { name: 'approveOrder' });
    await approve.waitFor();
    expect(await approve.isDisabled()).toBe(true);
    const describedBy = (await approve.getAttribute('aria-describedby')) ?? '';
    expect(await page.locator(`[id="${describedBy}"]`).textContent()).toMatch(/^Only .*manager.* may do this\.$/);
    const history = page.getByRole('list', { name: 'History' });
    await history.getByText('submitOrder').waitFor();
    expect(await history.textContent()).toContain('sales@chemichemi.test');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'entity');

    // A manager approves it from the same page.
    const other = await newContext(t.browser(), baseURL);
    const manager = await other.newPage();
    await signIn(manager, 'manager@chemichemi.test', `/t/${TENANT}/entities/order/${order.id}`);
    const approveAsManager = manager.getByRole('button', { name: 'approveOrder' });
    await approveAsManager.waitFor();
    const why = await approveAsManager.getAttribute('aria-describedby');
    expect(why ? await manager.locator(`[id="${why}"]`).textContent() : null).toBeNull();
    await approveAsManager.click();
    await manager.getByRole('status').filter({ hasText: 'approveOrder: now APPROVED.' }).waitFor();
    await manager.getByRole('list', { name: 'History' }).getByText('approveOrder').waitFor();
    await other.close();
  });
});
