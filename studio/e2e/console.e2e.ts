// The console, end to end: a sales user finds an order in the list (search, sort in the URL),
// opens it, submits it with its button, sees approveOrder disabled with the reason, and the
// history names every step with its actor; a manager then approves it.

import { describe, expect, inject, it } from 'vitest';
import { signInApi } from './api';
import { browserPerTest, newContext, screenshot, seriousViolations } from './browser';
import { signIn, PASSWORD, TENANT } from './signin';

const baseURL = inject('baseURL');

const t = browserPerTest(baseURL);

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

    await signIn(page, { email: 'sales@chemichemi.test', next: `/t/${TENANT}` });
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
    expect(await page.getByLabel('State').textContent()).toBe('Draft');
    const submit = page.getByRole('button', { name: 'Submit order' });
    await submit.focus();
    await page.keyboard.press('Enter');
    const answer = page.getByRole('status').filter({ hasText: /^Submit order/ }).or(page.getByRole('alert'));
    await answer.first().waitFor();
    expect(await answer.first().textContent()).toBe('Submit order: now Pending approval.');
    await expect.poll(() => page.getByLabel('State').textContent()).toBe('Pending approval');

    // What sales may not do, and why.
    const approve = page.getByRole('button', { name: 'Approve order' });
    await approve.waitFor();
    expect(await approve.isDisabled()).toBe(true);
    const describedBy = (await approve.getAttribute('aria-describedby')) ?? '';
    expect(await page.locator(`[id="${describedBy}"]`).textContent()).toMatch(/^Only .*manager.* may do this\.$/);
    const history = page.getByRole('list', { name: 'History' });
    await history.getByText('Submit order').waitFor();
    expect(await history.textContent()).toContain('sales@chemichemi.test');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'entity');

    // A manager approves it from the same page.
    const other = await newContext(t.browser(), baseURL);
    const manager = await other.newPage();
    await signIn(manager, { email: 'manager@chemichemi.test', next: `/t/${TENANT}/entities/order/${order.id}` });
    const approveAsManager = manager.getByRole('button', { name: 'Approve order' });
    await approveAsManager.waitFor();
    const why = await approveAsManager.getAttribute('aria-describedby');
    expect(why ? await manager.locator(`[id="${why}"]`).textContent() : null).toBeNull();
    await approveAsManager.click();
    await manager.getByRole('status').filter({ hasText: 'Approve order: now Approved.' }).waitFor();
    await manager.getByRole('list', { name: 'History' }).getByText('Approve order').waitFor();
    await other.close();
  });

  it('creates an order with two lines in the generated form; the manager finds it in the inbox and approves it', async () => {
    const page = t.page();
    const sales = await signInApi(baseURL, TENANT, 'sales@chemichemi.test', PASSWORD);
    const base = `/api/v1/t/${TENANT}/entities`;
    const customers = await sales.ok<{ data: Entity[] }>('GET', `${base}/customer?limit=100`);
    const left = (c: Entity) => Number(c.data.credit_limit ?? 0) - Number(c.data.balance ?? 0);
    const customer = [...customers.data].filter((c) => c.state === 'ACTIVE').sort((a, b) => left(b) - left(a))[0];
    const products = await sales.ok<{ data: Entity[] }>('GET', `${base}/product?limit=100`);
    const [cheap, next] = [...products.data].sort((a, b) => Number(a.data.base_price) - Number(b.data.base_price));
    const warehouses = await sales.ok<{ data: Entity[] }>('GET', `${base}/warehouse?limit=1`);
    if (!customer || !cheap || !next || !warehouses.data[0]) throw new Error('the demo data has changed');

    // The list links to the form; the form is generated from the type's schema.
    await signIn(page, { email: 'sales@chemichemi.test', next: `/t/${TENANT}/entities/order` });
    await page.getByRole('link', { name: 'New Order' }).click();
    await page.getByRole('heading', { name: 'New Order' }).waitFor();
    // Generated fields are the server's: not in the form.
    expect(await page.getByLabel('Order number').count()).toBe(0);
    expect(await page.getByLabel('Total', { exact: true }).count()).toBe(0);
    const customerPicker = page.getByLabel('Customer');
    await customerPicker.locator('option', { hasText: String(customer.data.name) }).waitFor({ state: 'attached' });
    await customerPicker.selectOption(customer.id);
    const warehousePicker = page.getByLabel('Warehouse');
    await warehousePicker.locator(`option[value="${warehouses.data[0].id}"]`).waitFor({ state: 'attached' });
    await warehousePicker.selectOption(warehouses.data[0].id);
    // Two lines, each a row of the array.
    const add = page.getByRole('button', { name: 'Add' });
    await add.click();
    await add.click();
    const productPickers = page.getByLabel('Product');
    await expect.poll(() => productPickers.count()).toBe(2);
    await productPickers.nth(0).locator(`option[value="${cheap.id}"]`).waitFor({ state: 'attached' });
    await productPickers.nth(0).selectOption(cheap.id);
    await productPickers.nth(1).selectOption(next.id);
    const quantities = page.getByLabel('quantity');
    await quantities.nth(0).fill('2');
    await quantities.nth(1).fill('1');
    // Each row titled as people read it: "Line item 2", not rjsf's "Line items-2".
    await page.locator('legend').filter({ hasText: /^Line item 2\*?$/ }).waitFor();
    expect(await page.getByText(/Line items-\d/).count()).toBe(0);
    await page.getByLabel('Notes').or(page.getByLabel('notes')).fill('created in the form');
    expect(await seriousViolations(page)).toEqual([]);
    await page.evaluate(() => {
      window.scrollTo(0, 0);
    });
    await screenshot(page, 'create');

    // A line without a quantity is refused at its field, and what was typed stays.
    await quantities.nth(1).fill('');
    await page.getByRole('button', { name: 'Create Order' }).click();
    await page.getByRole('alert').waitFor();
    await page.locator('.error-detail').first().waitFor();
    expect(await page.locator('#new_items_1_quantity').isVisible()).toBe(true);
    expect(await quantities.nth(0).inputValue()).toBe('2');
    await quantities.nth(1).fill('1');
    await page.getByRole('button', { name: 'Create Order' }).click();

    // Created: the entity page, titled by its number (the server's display).
    const heading = page.getByRole('heading', { name: /^Order ORD-/ });
    await heading.waitFor();
    const number = ((await heading.textContent()) ?? '').replace(/^Order /, '');
    expect(await page.getByLabel('State').textContent()).toBe('Draft');

    // Editing: the fields DRAFT lets sales edit, saved with If-Match.
    const edit = page.getByRole('region', { name: 'Edit' });
    const notes = edit.getByLabel('notes');
    expect(await notes.inputValue()).toBe('created in the form');
    await notes.fill('edited once');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved: version 2.' }).waitFor();
    // Someone else saves while this is being typed: the event stream brings it at once, and a
    // notice says so without touching the form; Save says so too, Reload keeps what was typed.
    const id = page.url().split('/').pop() ?? '';
    await notes.fill('my second edit');
    await sales.ok('PATCH', `${base}/order/${id}`, { data: { notes: 'their edit', requested_delivery_date: '2030-01-02' } });
    const notice = edit.getByRole('status').filter({ hasText: 'This Order changed while you were editing (now version 3)' });
    await notice.waitFor();
    expect(await notes.inputValue()).toBe('my second edit');
    expect(await seriousViolations(page)).toEqual([]);
    // The notice stays in sight (sticky) over the form being typed in.
    expect(await notice.isVisible()).toBe(true);
    await screenshot(page, 'edit-live-notice');
    await edit.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByRole('alert').filter({ hasText: 'Someone else changed this Order' });
    await conflict.waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await conflict.scrollIntoViewIfNeeded();
    await screenshot(page, 'edit-conflict');
    await conflict.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('status').filter({ hasText: /Reloaded version 3; they changed .*notes/ }).waitFor();
    expect(await notes.inputValue()).toBe('my second edit');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved: version 4.' }).waitFor();
    const saved = await sales.ok<Entity>('GET', `${base}/order/${id}`);
    expect([saved.data.notes, saved.data.requested_delivery_date]).toEqual(['my second edit', '2030-01-02']);

    await page.getByRole('button', { name: 'Submit order' }).click();
    await page.getByRole('status').filter({ hasText: 'Submit order: now Pending approval.' }).waitFor();
    const orderUrl = page.url();

    // The manager's home is the inbox: the order under Order: approveOrder, oldest first, and
    // the count beside Order in the navigation.
    const other = await newContext(t.browser(), baseURL);
    const manager = await other.newPage();
    await signIn(manager, { email: 'manager@chemichemi.test', next: `/t/${TENANT}` });
    await manager.getByRole('heading', { name: 'Inbox' }).waitFor();
    expect(await manager.title()).toBe(`Inbox · ${TENANT} · Switchyard studio`);
    const approvals = manager.getByRole('region', { name: /^Order: Approve order/ });
    await approvals.waitFor();
    const link = approvals.getByRole('link', { name: number });
    await link.waitFor();
    const nav = manager.getByRole('list', { name: 'Entity types' });
    expect(await nav.getByRole('listitem').filter({ has: manager.getByRole('link', { name: 'Order', exact: true }) }).textContent()).toMatch(
      /waiting for you/,
    );
    expect(await seriousViolations(manager)).toEqual([]);
    await screenshot(manager, 'inbox');
    await link.click();
    await manager.getByRole('heading', { name: `Order ${number}` }).waitFor();
    const approve = manager.getByRole('button', { name: 'Approve order' });
    await approve.click();
    await manager.getByRole('status').filter({ hasText: 'Approve order: now Approved.' }).waitFor();
    // Back in the inbox, it waits no more for approval.
    await manager.goto(`/studio/t/${TENANT}`);
    await manager.getByRole('heading', { name: 'Inbox' }).waitFor();
    await manager.getByRole('status').filter({ hasText: /need|Nothing/ }).waitFor();
    expect(await manager.getByRole('region', { name: /^Order: Approve order/ }).getByRole('link', { name: number }).count()).toBe(0);
    await other.close();

    // Sales sees the approval in the history.
    await page.goto(orderUrl);
    await page.getByRole('list', { name: 'History' }).getByText('Approve order').waitFor();
    expect(await page.getByRole('list', { name: 'History' }).textContent()).toContain('manager@chemichemi.test');
  });

  it('offers only the drivers for a trip’s driver and shows the driver by name', async () => {
    const page = t.page();
    const dispatcher = await signInApi(baseURL, TENANT, 'dispatcher@chemichemi.test', PASSWORD);
    const base = `/api/v1/t/${TENANT}/entities`;
    const warehouses = await dispatcher.ok<{ data: Entity[] }>('GET', `${base}/warehouse?limit=1`);
    const drivers = await dispatcher.ok<{ data: { id: string; name: string; email: string }[] }>(
      'GET',
      `/api/v1/t/${TENANT}/user-choices?role=driver`,
    );
    const dan = drivers.data.find((u) => u.email === 'driver@chemichemi.test');
    if (!dan || !warehouses.data[0]) throw new Error('the demo data has changed');

    await signIn(page, { email: 'dispatcher@chemichemi.test', next: `/t/${TENANT}/entities/trip` });
    await page.getByRole('link', { name: 'New Trip' }).click();
    await page.getByRole('heading', { name: 'New Trip' }).waitFor();
    const warehousePicker = page.getByLabel('Warehouse');
    await warehousePicker.locator(`option[value="${warehouses.data[0].id}"]`).waitFor({ state: 'attached' });
    await warehousePicker.selectOption(warehouses.data[0].id);
    // The driver is chosen by name among the users having the driver role, and only them.
    const driverPicker = page.getByLabel('Driver');
    await driverPicker.locator('option', { hasText: 'Dan Driver (driver@chemichemi.test)' }).waitFor({ state: 'attached' });
    expect(await driverPicker.locator('option', { hasText: 'Sam Sales' }).count()).toBe(0);
    await driverPicker.selectOption(dan.id);
    await page.getByRole('button', { name: 'Create Trip' }).click();

    // The trip's page and the list name the driver; the id is what is stored.
    const heading = page.getByRole('heading', { name: /^Trip TRP-/ });
    await heading.waitFor();
    const number = ((await heading.textContent()) ?? '').replace(/^Trip /, '');
    await page.locator('dd').filter({ hasText: /^Dan Driver$/ }).waitFor();
    const id = page.url().split('/').pop() ?? '';
    expect((await dispatcher.ok<Entity>('GET', `${base}/trip/${id}`)).data.driver_id).toBe(dan.id);
    await page.goto(`/studio/t/${TENANT}/entities/trip?sort=-created_at`);
    await page.getByRole('row').filter({ hasText: number }).getByText('Dan Driver').waitFor();
    expect(await seriousViolations(page)).toEqual([]);
  });
});
