// Signing in through the login page, as a person does: the demo tenant, one of its users (the
// admin unless said), the demo password, and the page to go back to.

import type { Page } from 'playwright-core';

export const TENANT = 'chemichemi';
export const PASSWORD = 'switchyard-demo';
export const ADMIN = 'admin@chemichemi.test';

export async function signIn(p: Page, opts: { email?: string; password?: string; next?: string } = {}): Promise<void> {
  await p.goto(opts.next === undefined ? '/studio/login' : `/studio/login?next=${encodeURIComponent(opts.next)}`);
  await p.getByLabel('Tenant').fill(TENANT);
  await p.getByLabel('Email').fill(opts.email ?? ADMIN);
  await p.getByLabel('Password').fill(opts.password ?? PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
}
