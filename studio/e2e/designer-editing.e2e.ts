// The designer's editors, end to end: an admin sees the order's title and number templates
// rendered live by the server (a bad template says where it is wrong), adds nested fields (a
// field of each order item; a new `lines` array of objects with product, quantity and price),
// edits an existing guard of dispatchOrder as rules (adds a condition to it), and publishes with
// a comment that the versions list shows; then tries a decision table in the playground.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pendingOrder, signInApi, type Client } from './api';
import { browserPerTest, screenshot, seriousViolations } from './browser';
import { signIn, PASSWORD, TENANT } from './signin';

const baseURL = inject('baseURL');

const t = browserPerTest(baseURL);

let admin: Client;
/** The live package before these tests, published again after them (the other files expect it). */
let original: unknown;

interface DraftTypes {
  types: { name: string; title?: string; fields?: Record<string, unknown>; workflow?: { transitions?: Record<string, { guards?: { rule: unknown }[] }> } }[];
}

async function draftOrder() {
  const d = await admin.ok<{ package: DraftTypes }>('GET', `/api/v1/t/${TENANT}/config/draft`);
  const order = d.package.types.find((x) => x.name === 'order');
  if (!order) throw new Error('no order in the draft');
  return order;
}

beforeAll(async () => {
  admin = await signInApi(baseURL, TENANT, 'admin@chemichemi.test', PASSWORD);
  // Whatever an earlier file left: start from the live version.
  await admin.call('DELETE', `/api/v1/t/${TENANT}/config/draft`);
  original = await admin.ok('GET', `/api/v1/t/${TENANT}/config/export`);
  // A live order for the previews to render over.
  await pendingOrder(admin, TENANT, 1);
});

afterAll(async () => {
  await admin.call('DELETE', `/api/v1/t/${TENANT}/config/draft`);
  // The same package as before: its version is live again.
  await admin.ok('POST', `/api/v1/t/${TENANT}/config/apply`, original);
});

const saved = (p: Page) => p.getByRole('status').filter({ hasText: 'All changes saved' }).waitFor();

describe('the designer’s editors', () => {
  it('previews templates, nests fields, edits a guard as rules and publishes with a comment', async () => {
    const page = t.page();
    await signIn(page, { next: `/t/${TENANT}/design/types/order` });
    await page.getByRole('heading', { name: 'Order', exact: true }).waitFor();

    // The title over a live order (the demo has some), rendered by the server.
    const title = page.getByLabel('Title preview');
    await expect.poll(() => title.textContent()).toMatch(/^ORD-\d{4}-\d{6}$/);
    await page.getByText(/on the live Order ORD-/).first().waitFor();
    // A mistake is shown with where it is, and the preview follows the typing.
    const titleBox = page.getByLabel('Title template');
    await titleBox.fill('{{ order_number ');
    await expect.poll(() => title.textContent()).toMatch(/\(line 1, column \d+\)$/);
    await titleBox.fill('Order {{ order_number }} ({{ order_type | upper }})');
    await expect.poll(() => title.textContent()).toMatch(/^Order ORD-\d{4}-\d{6} \([A-Z]+\)$/);
    // The number, with sequence 123 and this year.
    const number = page.getByLabel('Number preview');
    await expect.poll(() => number.textContent()).toBe(`ORD-${String(new Date().getUTCFullYear())}-000123`);
    await page.getByLabel('Number template').fill('SO-{{ seq }}');
    await expect.poll(() => number.textContent()).toBe('SO-123');
    await page.getByLabel('Number template').fill('ORD-{{ year }}-{{ seq | pad(6) }}');
    await titleBox.fill('{{ order_number }}');
    await expect.poll(() => title.textContent()).toMatch(/^ORD-\d{4}-\d{6}$/);

    // A nested field in each order item.
    const side = page.getByRole('complementary', { name: 'Selection' });
    await page.getByRole('button', { name: 'Edit field items', exact: true }).click();
    await side.getByRole('heading', { name: 'Field items' }).waitFor();
    await side.getByLabel('New nested field').fill('discount');
    await side.getByLabel('Nested field kind').selectOption('decimal');
    await side.getByRole('button', { name: 'Add nested field' }).click();
    await side.getByRole('button', { name: 'Edit field items.discount' }).click();
    await side.getByRole('heading', { name: 'Field items.discount' }).waitFor();
    await side.getByLabel('Label').fill('Discount');

    // A new array of objects: lines with a product, a quantity and a price.
    await page.getByLabel('New field').fill('lines');
    await page.getByLabel('of kind').selectOption('array');
    await page.getByRole('button', { name: 'Add field' }).click();
    await side.getByRole('heading', { name: 'Field lines' }).waitFor();
    await side.getByLabel('Element kind').selectOption('object');
    for (const [name, kind] of [
      ['product', 'reference'],
      ['quantity', 'integer'],
      ['price', 'decimal'],
    ] as const) {
      await side.getByLabel('New nested field').fill(name);
      await side.getByLabel('Nested field kind').selectOption(kind);
      await side.getByRole('button', { name: 'Add nested field' }).click();
      await page.getByRole('button', { name: `Edit field lines.${name}` }).first().waitFor();
    }
    await page.getByRole('button', { name: 'Edit field lines.product' }).first().click();
    await side.getByRole('heading', { name: 'Field lines.product' }).waitFor();
    await side.getByLabel('Refers to').selectOption('product');
    await saved(page);
    expect(await seriousViolations(page)).toEqual([]);
    await page.evaluate(() => {
      window.scrollTo(0, 0);
    });
    await screenshot(page, 'fields-nested');
    await expect
      .poll(async () => (await draftOrder()).fields?.lines)
      .toEqual({
        type: 'array',
        items: { type: 'object', fields: { product: { type: 'reference', to: 'product' }, quantity: { type: 'integer' }, price: { type: 'decimal', scale: 2 } } },
      });
    expect(((await draftOrder()).fields?.items as { items: { fields: Record<string, unknown> } }).items.fields.discount).toEqual({
      type: 'decimal',
      scale: 2,
      label: 'Discount',
    });

    // An existing guard, edited as rules: dispatchOrder's trip must be PLANNED or DISPATCHED,
    // and now the order must have its number too.
    await page.goto(`/studio/t/${TENANT}/design/types/order/workflow`);
    await page.getByRole('heading', { name: 'Workflow of Order' }).waitFor();
    await page.getByRole('group', { name: 'Transition dispatchOrder from ALLOCATED to DISPATCHED' }).focus();
    await page.keyboard.press('Enter');
    await side.getByRole('heading', { name: 'Transition dispatchOrder' }).waitFor();
    const rules = side.getByRole('group', { name: 'Guard 2 rules' });
    await rules.waitFor();
    expect(await rules.getByTitle('Value read').first().inputValue()).toBe('trip.state');
    expect(await rules.getByTitle('Operator').first().inputValue()).toBe('in');
    expect(await rules.getByTitle('Compared with', { exact: true }).first().inputValue()).toBe('PLANNED,DISPATCHED');
    await rules.getByRole('button', { name: 'Add condition' }).click();
    await rules.getByTitle('Value read').nth(1).selectOption('entity.order_number');
    await rules.getByTitle('Operator').nth(1).selectOption('truthy');
    await saved(page);
    const expected = { and: [{ in: [{ var: 'trip.state' }, ['PLANNED', 'DISPATCHED']] }, { '!!': [{ var: 'entity.order_number' }] }] };
    await expect.poll(async () => (await draftOrder()).workflow?.transitions?.dispatchOrder?.guards?.[1]?.rule).toEqual(expected);
    expect(await seriousViolations(page)).toEqual([]);
    await rules.scrollIntoViewIfNeeded();
    await screenshot(page, 'designer-guard-rules');
    // The same guard as JSON-Logic, with a clear switch back.
    await side.getByRole('radiogroup', { name: 'Guard 2 edited as' }).getByLabel('JSON-Logic').check();
    expect(JSON.parse(await side.getByLabel('Guard 2 rule (JSON-Logic)').inputValue())).toEqual(expected);
    await side.getByRole('radiogroup', { name: 'Guard 2 edited as' }).getByLabel('Rules').check();
    await rules.waitFor();

    // Publish with a comment: the versions list shows who, when and the comment.
    await page.getByRole('link', { name: '← Types' }).click();
    await page.getByRole('link', { name: 'Review and publish' }).click();
    await page.getByRole('button', { name: 'Show the plan' }).click();
    await page.getByLabel('The plan').waitFor();
    await page.getByLabel('Comment (what this version changes)').fill('Order lines, item discounts; dispatch needs a number');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('status').filter({ hasText: /^Published as version \d+\.$/ }).waitFor();
    const versions = page.getByRole('table', { name: 'Published versions' });
    const row = versions.getByRole('row', { name: /Order lines, item discounts; dispatch needs a number/ });
    await row.waitFor();
    expect(await row.textContent()).toContain('admin@chemichemi.test');
    expect(await row.textContent()).toContain('live');
    expect(await seriousViolations(page)).toEqual([]);
    await versions.scrollIntoViewIfNeeded();
    await screenshot(page, 'publish-versions');
    // Many steps, each waiting on the server: more than the default minute on a busy machine.
  }, 180_000);

  it('evaluates a decision table and shows the rule that won', async () => {
    // Chemichemi has no decision table: fulfilment's QC table is published into it.
    const qc = parse(readFileSync(join(import.meta.dirname, '../../examples/fulfilment/decisions/qc_outcome.yaml'), 'utf8')) as unknown;
    const live = await admin.ok('GET', `/api/v1/t/${TENANT}/config/export`);
    await admin.ok('POST', `/api/v1/t/${TENANT}/config/apply?comment=${encodeURIComponent('QC table for the playground')}`, { ...live, decisions: [qc] });
    await admin.call('DELETE', `/api/v1/t/${TENANT}/config/draft`);

    const page = t.page();
    await signIn(page, { next: `/t/${TENANT}/design` });
    const playground = page.getByRole('region', { name: 'Decision tables' });
    // Text inputs offer the values the rules name; the columns read as labels.
    const condition = playground.getByLabel('Condition', { exact: true });
    const list = await condition.getAttribute('list');
    expect(await page.locator(`datalist[id="${list ?? ''}"] option`).evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual([
      'damaged',
      'used',
      'new',
      'like_new',
    ]);
    await condition.fill('used');
    await playground.getByLabel('Works', { exact: true }).selectOption('false');
    expect(await playground.getByRole('columnheader', { name: 'Accessories complete' }).count()).toBe(1);
    await playground.getByRole('button', { name: 'Evaluate QC outcome of returned goods' }).click();
    await playground.getByRole('status').filter({ hasText: 'write_off' }).waitFor();
    const rules = playground.getByRole('table', { name: /^Rules of QC outcome/ });
    expect(await rules.getByRole('row').nth(2).textContent()).toMatch(/won$/);
    expect(await rules.getByRole('row').nth(1).textContent()).not.toMatch(/won$|matched$/);
    expect(await seriousViolations(page)).toEqual([]);
    await playground.scrollIntoViewIfNeeded();
    await screenshot(page, 'decisions');
  });
});
