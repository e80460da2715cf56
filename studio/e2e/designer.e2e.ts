// The workflow designer, end to end, as the issue tells it: an admin opens chemichemi's order
// workflow, adds ON_HOLD and putOnHold (managers, a guard built in the builder), sees the dead
// end reported until `resume` is added, finds the draft after a reload, dry-runs putOnHold on a
// small order (refused with the guard's message and values, nothing written), publishes, and a
// manager then fires putOnHold over the API on a large order.

import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { pendingOrder, signInApi, type Client } from './api';
import { browserPerTest, screenshot, seriousViolations } from './browser';
import { signIn, PASSWORD, TENANT } from './signin';

const baseURL = inject('baseURL');

const t = browserPerTest(baseURL);

let admin: Client;

beforeAll(async () => {
  admin = await signInApi(baseURL, TENANT, 'admin@chemichemi.test', PASSWORD);
});

const states = (p: Page) => p.getByRole('group', { name: /^State / });
const problems = (p: Page) => p.getByRole('list', { name: 'Problems' });
/**
 * The transitions drawn through a state they do not join, as `transition id: state`: points along
 * each drawn line (its ends left out) that fall inside another state's box on the screen.
 */
function edgesThroughStates(p: Page): Promise<string[]> {
  return p.evaluate(() => {
    const boxes = [...document.querySelectorAll('.react-flow__node')].map((n) => ({
      id: n.getAttribute('data-id') ?? '',
      r: n.getBoundingClientRect(),
    }));
    const found = new Set<string>();
    for (const edge of document.querySelectorAll('.react-flow__edge')) {
      const path = edge.querySelector<SVGPathElement>('path.react-flow__edge-path');
      const matrix = path?.getScreenCTM();
      if (!path || !matrix) continue;
      const length = path.getTotalLength();
      const screen = (at: number) => new DOMPoint(path.getPointAtLength(at).x, path.getPointAtLength(at).y).matrixTransform(matrix);
      const within = (q: DOMPoint, r: DOMRect, grow: number) =>
        q.x > r.left - grow && q.x < r.right + grow && q.y > r.top - grow && q.y < r.bottom + grow;
      // The states it joins hold its ends.
      const [start, end] = [screen(0), screen(length)];
      const joined = new Set(boxes.filter((b) => within(start, b.r, 3) || within(end, b.r, 3)).map((b) => b.id));
      for (let i = 1; i < 40; i++) {
        const q = screen((length * i) / 40);
        for (const b of boxes) if (!joined.has(b.id) && within(q, b.r, -2)) found.add(`${edge.getAttribute('data-id') ?? ''}: ${b.id}`);
      }
    }
    return [...found].sort();
  });
}

const saved = (p: Page) => p.getByRole('status').filter({ hasText: 'All changes saved' }).waitFor();

describe('the workflow designer', () => {
  it('designs, tries and publishes ON_HOLD on the order workflow', async () => {
    const page = t.page();
    const workflow = `/t/${TENANT}/design/types/order/workflow`;
    await signIn(page, { next: workflow });
    await page.getByRole('heading', { name: 'Workflow of Order' }).waitFor();
    await expect.poll(() => states(page).count()).toBe(10);
    await page.getByRole('group', { name: 'State DRAFT (initial)' }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    // No transition is drawn through a state it does not join (it would look like it ends there).
    await expect.poll(() => edgesThroughStates(page)).toEqual([]);
    await screenshot(page, 'designer');

    // A state, then a transition into it from PENDING_APPROVAL with a guard from the builder.
    await page.getByLabel('New state').fill('ON_HOLD');
    await page.getByRole('button', { name: 'Add state' }).click();
    await expect.poll(() => states(page).count()).toBe(11);
    await page.getByRole('heading', { name: 'State ON_HOLD' }).waitFor();

    await page.getByRole('group', { name: 'State PENDING_APPROVAL' }).click();
    const side = page.getByRole('complementary', { name: 'Selection' });
    await side.getByRole('heading', { name: 'State PENDING_APPROVAL' }).waitFor();
    await side.getByLabel('To state').selectOption('ON_HOLD');
    await side.getByLabel('Transition name').fill('putOnHold');
    await side.getByRole('button', { name: 'Add transition' }).click();
    await side.getByRole('heading', { name: 'Transition putOnHold' }).waitFor();
    await side.getByRole('checkbox', { name: 'manager' }).check();
    await side.getByLabel('Value').selectOption('entity.total_amount');
    await side.getByLabel('Operator').selectOption('>');
    await side.getByLabel('Compared with').fill('1000');
    await side.getByLabel('Message when it fails').fill('Only orders above 1000 go on hold');
    await side.getByRole('button', { name: 'Add guard' }).click();
    await side.getByLabel('Guard 1 message').waitFor();
    // Shown as rules (the builder can express it); as JSON-Logic, it is the comparison built.
    await side.getByRole('group', { name: 'Guard 1 rules' }).waitFor();
    await side.getByRole('radiogroup', { name: 'Guard 1 edited as' }).getByLabel('JSON-Logic').check();
    expect(await side.getByLabel('Guard 1 rule (JSON-Logic)').inputValue()).toBe('{">":[{"var":"entity.total_amount"},1000]}');

    // The guard playground: each clause and variable with its value, on hand-written data.
    await side.getByText('Evaluate guard 1').click();
    await side.getByLabel('Context (JSON)').fill('{"entity": {"total_amount": 120}}');
    await side.getByRole('button', { name: 'Evaluate', exact: true }).click();
    const values = side.getByRole('table', { name: 'Evaluate guard 1: values' });
    await values.waitFor();
    expect(await values.getByRole('row').allInnerTexts()).toEqual([
      'Clause\tValue',
      '{">":[{"var":"entity.total_amount"},1000]}\tfalse',
      '{"var":"entity.total_amount"}\t120',
    ]);
    await side.getByText('Evaluate guard 1').click();

    // The dead end is a problem, until `resume` leads back.
    const deadEnd = problems(page).getByRole('listitem').filter({ hasText: 'state `ON_HOLD` is not terminal but no transition leaves it' });
    await deadEnd.waitFor();
    // The screen as its user reads it: the edit saved, the problem in view (below the diagram).
    await saved(page);
    await deadEnd.scrollIntoViewIfNeeded();
    await screenshot(page, 'designer-problems');
    await deadEnd.getByRole('button').click();
    await side.getByRole('heading', { name: 'State ON_HOLD' }).waitFor();
    await side.getByLabel('To state').selectOption('PENDING_APPROVAL');
    await side.getByLabel('Transition name').fill('resume');
    await side.getByRole('button', { name: 'Add transition' }).click();
    await side.getByRole('heading', { name: 'Transition resume' }).waitFor();
    await side.getByRole('checkbox', { name: 'manager' }).check();
    await deadEnd.waitFor({ state: 'detached' });
    await saved(page);

    // Undo and redo (the keyboard's too) go through the edits.
    await page.getByRole('button', { name: 'Undo' }).click();
    await expect.poll(() => side.getByRole('checkbox', { name: 'manager' }).isChecked()).toBe(false);
    await page.getByRole('button', { name: 'Redo' }).click();
    await expect.poll(() => side.getByRole('checkbox', { name: 'manager' }).isChecked()).toBe(true);
    await saved(page);

    // The draft is on the server: a reload finds it as left.
    await page.reload();
    await page.getByRole('heading', { name: 'Workflow of Order' }).waitFor();
    await expect.poll(() => states(page).count()).toBe(11);
    await page.getByRole('group', { name: 'Transition putOnHold from PENDING_APPROVAL to ON_HOLD' }).waitFor();
    const draft = await admin.ok<{ version: number; package: { types: { name: string; workflow?: { transitions?: Record<string, { roles?: string[] }> } }[] } }>(
      'GET',
      `/api/v1/t/${TENANT}/config/draft`,
    );
    const order = draft.package.types.find((t) => t.name === 'order');
    expect(order?.workflow?.transitions?.resume?.roles).toEqual(['manager']);

    // Dragging a state keeps it there: the first move records every state's place in the draft
    // (layout hints the engine ignores), and the draft still validates.
    const onHold = page.getByRole('group', { name: 'State ON_HOLD' });
    const box = await onHold.boundingBox();
    if (!box) throw new Error('ON_HOLD is not drawn');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    // Up into the free space above it (the screenshots show where it lands: not on Draft).
    await page.mouse.move(box.x + box.width / 2 + 40, box.y + box.height / 2 - 90, { steps: 8 });
    await page.mouse.up();
    await expect
      .poll(async () => {
        const d = await admin.ok<{ package: { types: { name: string; workflow?: { states: Record<string, { position?: unknown }> } }[] } }>(
          'GET',
          `/api/v1/t/${TENANT}/config/draft`,
        );
        const states = Object.values(d.package.types.find((t) => t.name === 'order')?.workflow?.states ?? {});
        return states.length > 0 && states.every((st) => st.position !== undefined);
      })
      .toBe(true);
    await page.getByRole('heading', { name: /^Problems/ }).getByText('0').waitFor();

    // Dry run on a small live order: refused by the guard, with its values; nothing written.
    const small = await pendingOrder(admin, TENANT, 1);
    // The keyboard's way: the transition's line takes the focus, Enter selects it.
    await page.getByRole('group', { name: 'Transition putOnHold from PENDING_APPROVAL to ON_HOLD' }).focus();
    await page.keyboard.press('Enter');
    await side.getByRole('heading', { name: 'Transition putOnHold' }).waitFor();
    await side.getByLabel('Search entities').fill(String(small.data.order_number));
    await expect.poll(() => side.getByLabel('Entity', { exact: true }).inputValue()).toBe(small.id);
    // As a manager: the transition is theirs (an admin is refused by its roles).
    await side.getByLabel('Act as').selectOption({ label: 'Mona Manager (manager)' });
    await side.getByRole('button', { name: 'Dry run' }).click();
    const result = side.getByRole('region', { name: 'Dry run result' });
    await result.waitFor();
    expect(await result.textContent()).toContain('Refused: Only orders above 1000 go on hold');
    expect(await result.getByRole('list', { name: 'Guards' }).textContent()).toContain('total_amount');
    // The whole workflow in view (the drag above left ON_HOLD, the transition's target, above the
    // canvas's edge): the picture shows what the dry run is about.
    await page.getByRole('button', { name: 'Fit View' }).click();
    await page.getByRole('group', { name: 'State ON_HOLD' }).waitFor();
    await result.scrollIntoViewIfNeeded();
    await screenshot(page, 'designer-dry-run');
    const after = await admin.ok<{ state: string; version: number }>('GET', `/api/v1/t/${TENANT}/entities/order/${small.id}`);
    expect(after).toMatchObject({ state: 'PENDING_APPROVAL', version: small.version });

    // Publish: the plan lists the changes.
    await page.getByRole('link', { name: '← Types' }).click();
    await page.getByRole('link', { name: 'Review and publish' }).click();
    await page.getByRole('button', { name: 'Show the plan' }).click();
    const plan = page.getByLabel('The plan');
    await plan.waitFor();
    const text = (await plan.textContent()) ?? '';
    expect(text).toContain('putOnHold');
    expect(text).toContain('ON_HOLD');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'publish');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('status').filter({ hasText: /^Published as version \d+\.$/ }).waitFor();

    // The small order was created under the old version: it has no putOnHold until migrated.
    const manager = await signInApi(baseURL, TENANT, 'manager@chemichemi.test', PASSWORD);
    const onOld = await manager.call('POST', `/api/v1/t/${TENANT}/entities/order/${small.id}/transitions/putOnHold`, {});
    expect(onOld).toMatchObject({ status: 409, body: { error: { code: 'INVALID_TRANSITION' } } });
    await page.getByRole('button', { name: 'Dry run the migration' }).click();
    const report = page.getByRole('region', { name: 'Migration report' });
    await report.getByRole('status').filter({ hasText: /^Dry run: \d+ would move/ }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'migrate');
    await report.getByRole('button', { name: /^Migrate \d+ entit/ }).click();
    await report.getByRole('status').filter({ hasText: /^Done: \d+ moved/ }).waitFor();
    const onNew = await manager.call('POST', `/api/v1/t/${TENANT}/entities/order/${small.id}/transitions/putOnHold`, {});
    expect(onNew).toMatchObject({ status: 409, body: { error: { code: 'GUARD_FAILED' } } });

    // A manager fires putOnHold over the API on a large order created under the new version.
    const large = await pendingOrder(admin, TENANT, 200);
    expect(Number(large.data.total_amount)).toBeGreaterThan(1000);
    const held = await manager.ok<{ entity: { state: string } }>(
      'POST',
      `/api/v1/t/${TENANT}/entities/order/${large.id}/transitions/putOnHold`,
      {},
    );
    expect(held.entity.state).toBe('ON_HOLD');
  });
});

describe('the types and fields of a draft', () => {
  it('adds a type and a field, shows them as package files, and discards the draft', async () => {
    const page = t.page();
    await signIn(page, { next: `/t/${TENANT}/design` });
    await page.getByRole('heading', { name: 'Design' }).waitFor();
    await page.getByRole('table', { name: 'Entity types of the draft' }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'design');

    await page.getByLabel('New type').fill('complaint');
    await page.getByRole('button', { name: 'Add type' }).click();
    await page.getByRole('heading', { name: 'complaint' }).waitFor();
    await page.getByLabel('New field').fill('subject');
    await page.getByLabel('of kind').selectOption('string');
    await page.getByRole('button', { name: 'Add field' }).click();
    const side = page.getByRole('complementary', { name: 'Selection' });
    await side.getByRole('heading', { name: 'Field subject' }).waitFor();
    await side.getByRole('checkbox', { name: 'Required' }).check();
    await side.getByLabel('Maximum length').fill('200');
    // A rename is refused with the reason when the name is reserved.
    await side.getByLabel('Name').fill('state');
    await side.getByLabel('Name').press('Enter');
    await side.getByText('“state” is reserved for every entity.').waitFor();
    await side.getByLabel('Name').fill('subject');
    await side.getByLabel('Name').press('Enter');
    await side.getByText('“state” is reserved for every entity.').waitFor({ state: 'detached' });
    await saved(page);
    expect(await seriousViolations(page)).toEqual([]);
    await page.evaluate(() => {
      window.scrollTo(0, 0);
    });
    await screenshot(page, 'fields');

    // The draft as files: the new type's YAML.
    await page.getByRole('link', { name: '← Types' }).click();
    await page.getByRole('heading', { name: 'Design' }).waitFor();
    await page.getByText('types/complaint.yaml').click();
    const yaml = (await page.getByLabel('types/complaint.yaml').textContent()) ?? '';
    expect(yaml).toContain('name: complaint');
    expect(yaml).toContain('subject:');
    expect(yaml).toContain('max_length: 200');

    // Another admin saves meanwhile: the next save here is a conflict, resolved by reloading theirs.
    const theirs = await admin.ok<{ version: number; package: { tenant: Record<string, unknown>; types: { name: string; label?: string }[] } }>(
      'GET',
      `/api/v1/t/${TENANT}/config/draft`,
    );
    const renamed = theirs.package.types.map((t) => (t.name === 'complaint' ? { ...t, label: 'Their complaint' } : t));
    await admin.ok('PUT', `/api/v1/t/${TENANT}/config/draft`, { version: theirs.version, package: { ...theirs.package, types: renamed } });
    await page.getByLabel('New type').fill('suggestion');
    await page.getByRole('button', { name: 'Add type' }).click();
    const conflict = page.getByRole('dialog', { name: 'The draft was changed elsewhere' });
    await conflict.waitFor();
    expect(await page.getByRole('status').filter({ hasText: 'Not saved' }).count()).toBe(1);
    await conflict.getByRole('button', { name: 'Reload their draft' }).click();
    await conflict.waitFor({ state: 'detached' });
    await page.getByRole('link', { name: '← Types' }).click();
    await page.getByRole('row', { name: /Their complaint/ }).waitFor();
    expect(await page.getByRole('row', { name: /suggestion/ }).count()).toBe(0);

    // Discarding starts again from the live version.
    await page.getByRole('button', { name: 'Discard the draft' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Discard the draft' }).click();
    await page.getByRole('row', { name: /complaint/ }).waitFor({ state: 'detached' });
    const draft = await admin.ok<{ stored: boolean }>('GET', `/api/v1/t/${TENANT}/config/draft`);
    expect(draft.stored).toBe(false);
  });
});
