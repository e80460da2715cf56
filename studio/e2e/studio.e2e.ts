// The studio in Chromium against a real `switchyard serve --demo`: signing in, the home listing
// the tenant's types, a reload keeping the session (the refresh cookie), deep links, signing out,
// a refused login, accessibility (axe-core) and the CSP (no console error).

import { describe, expect, inject, it } from 'vitest';
import { browserPerTest, screenshot, seriousViolations } from './browser';
import { signIn, PASSWORD, TENANT } from './signin';

const baseURL = inject('baseURL');
const USER = 'admin@chemichemi.test';

const t = browserPerTest(baseURL);

async function refreshCookie() {
  return (await t.context().cookies()).find((c) => c.name === 'switchyard_refresh');
}

describe('the studio', () => {
  it('prints its URL in the banner', () => {
    expect(inject('banner')).toContain(`Studio: ${baseURL}/studio/`);
  });

  it('shows an accessible login page', async () => {
    const page = t.page();
    await page.goto('/studio/');
    await page.waitForURL('**/studio/login');
    await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
    expect(await page.title()).toBe('Sign in · Switchyard studio');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'login');
  });

  it('shows the server’s message when the password is wrong', async () => {
    const page = t.page();
    await signIn(page, { password: 'not-the-password' });
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Invalid tenant, email or password');
    expect(page.url()).toContain('/studio/login');
    expect(await refreshCookie()).toBeUndefined();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'login-error');
  });

  it('signs in, lists the types, keeps the session over a reload, and signs out', async () => {
    const page = t.page();
    await signIn(page);
    await page.waitForURL(`**/studio/t/${TENANT}`);
    const types = page.getByRole('list', { name: 'Entity types' });
    await types.getByRole('link', { name: 'Order', exact: true }).waitFor();
    expect(await types.getByRole('listitem').count()).toBeGreaterThanOrEqual(10);
    await page.getByLabel('Signed in as').getByText('Ada Admin').waitFor();
    expect(await page.getByLabel('Tenant').textContent()).toBe(TENANT);
    expect(await page.title()).toBe(`Inbox · ${TENANT} · Switchyard studio`);

    // The refresh token is an HttpOnly cookie of the auth routes only; nothing in storage.
    const cookie = await refreshCookie();
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/v1/auth' });
    expect(await page.evaluate(() => [document.cookie, localStorage.length, sessionStorage.length])).toEqual(['', 0, 0]);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'home');

    // A reload starts with no token in memory: the cookie gets a new one (and is rotated).
    const refreshed = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/refresh'));
    await page.reload();
    expect((await refreshed).status()).toBe(200);
    await types.getByRole('link', { name: 'Order', exact: true }).waitFor();
    expect(page.url()).toBe(`${baseURL}/studio/t/${TENANT}`);
    expect((await refreshCookie())?.value).not.toBe(cookie?.value);

    // Tabs opening at once (a browser restoring them) share the cookie: they refresh in turn,
    // or the server would take the second spend of one refresh token for a theft.
    const tabs = await Promise.all([t.context().newPage(), t.context().newPage(), t.context().newPage()]);
    await Promise.all(tabs.map((t) => t.goto(`/studio/t/${TENANT}`)));
    for (const t of tabs) {
      await t.getByRole('link', { name: 'Order', exact: true }).waitFor();
      expect(t.url()).toBe(`${baseURL}/studio/t/${TENANT}`);
    }
    await Promise.all(tabs.map((t) => t.close()));

    // A link, then a deep link opened directly.
    await types.getByRole('link', { name: 'Order', exact: true }).click();
    await page.getByRole('link', { name: 'About Order', exact: true }).click();
    await page.getByRole('heading', { name: 'Order' }).waitFor();
    await page.getByRole('list', { name: 'States' }).getByRole('listitem').filter({ hasText: 'Pending approval' }).waitFor();
    // Its transitions, readable, with their states and roles; and the way to its entities.
    const approve = page.getByRole('list', { name: 'Transitions' }).getByRole('listitem').filter({ hasText: 'Approve order' });
    expect(await approve.textContent()).toContain('Pending approval → Approved; manager, admin');
    await page.getByRole('link', { name: 'Entities of Order' }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'type');
    const deep = await t.context().newPage();
    await deep.goto(`/studio/t/${TENANT}/types/trip`);
    await deep.getByRole('heading', { name: 'Trip' }).waitFor();
    await deep.close();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/studio/login');
    expect(await refreshCookie()).toBeUndefined();
    // The session is over on the server too: a reload stays signed out.
    await page.goto(`/studio/t/${TENANT}`);
    await page.waitForURL(/\/studio\/login\?next=/);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  it('goes back to the deep link after signing in', async () => {
    const page = t.page();
    await page.goto(`/studio/t/${TENANT}/types/customer`);
    await page.waitForURL(/\/studio\/login\?next=/);
    await page.getByLabel('Tenant').fill(TENANT);
    await page.getByLabel('Email').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Customer' }).waitFor();
    expect(page.url()).toBe(`${baseURL}/studio/t/${TENANT}/types/customer`);
  });
});
