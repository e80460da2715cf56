// Debian's Chromium driven by playwright-core: no browser is ever downloaded.

import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { repoDir, studioDir } from './server';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup.sh (apt-get install chromium) or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // Containers often have a small /dev/shm.
      '--disable-dev-shm-usage',
    ],
  });
}

export async function newContext(browser: Browser, baseURL: string): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
  // A CSP refusal names the code that tried (file, line, sample) in the console errors.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP ${e.violatedDirective} refused at ${e.sourceFile}:${String(e.lineNumber)}:${String(e.columnNumber)} (${e.sample})`);
    });
  });
  // Everything here answers in well under a second: fail fast, not after 30 s.
  context.setDefaultTimeout(10_000);
  return context;
}

/** The serious and critical accessibility violations of the page (axe-core). */
export async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${String(v.impact)}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const artefacts = join(studioDir, 'test-results');

/**
 * A screenshot into studio/test-results/; with STUDIO_SCREENSHOTS=docs also into docs/studio/
 * (`npm run e2e:screenshots`: the README shows those).
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artefacts, { recursive: true });
  const file = join(artefacts, `${name}.png`);
  await page.screenshot({ path: file });
  if (process.env.STUDIO_SCREENSHOTS === 'docs') {
    const docs = join(repoDir, 'docs/studio');
    mkdirSync(docs, { recursive: true });
    copyFileSync(file, join(docs, `${name}.png`));
  }
}

/** Console errors and uncaught exceptions (a CSP refusal shows as one). */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** What the page did, for a failed test: navigations, API answers, console messages. */
function followTrail(page: Page): string[] {
  const trail: string[] = [];
  const start = Date.now();
  const at = () => `${String(Date.now() - start).padStart(6)} ms`;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) trail.push(`${at()} navigated ${f.url()}`);
  });
  page.on('response', (r) => {
    if (r.url().includes('/api/')) trail.push(`${at()} ${String(r.status())} ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => trail.push(`${at()} failed ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? ''}`));
  page.on('console', (m) => trail.push(`${at()} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => trail.push(`${at()} page error: ${e.message}`));
  return trail;
}

/**
 * A failed test leaves its evidence: a screenshot and the page's accessibility tree in
 * studio/test-results/failed-*, and what the page did printed to the test's output (CI shows it).
 */
async function keepEvidence(page: Page, test: string, trail: string[]): Promise<void> {
  const name = `failed-${test.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`;
  mkdirSync(artefacts, { recursive: true });
  try {
    await page.screenshot({ path: join(artefacts, `${name}.png`), fullPage: true });
    writeFileSync(join(artefacts, `${name}.aria.yml`), await page.locator('body').ariaSnapshot({ timeout: 2_000 }));
    writeFileSync(join(artefacts, `${name}.html`), await page.content());
  } catch (e) {
    trail.push(`(no screenshot: ${String(e)})`);
  }
  console.error([`— what the page did in “${test}” (at ${page.url()}):`, ...trail, `— evidence: studio/test-results/${name}.*`].join('\n'));
}

/**
 * The set-up every end-to-end file shares: one browser for the file, a fresh context and page
 * per test (1280×800), and no console error (a CSP refusal, an exception) allowed at the end.
 * Refused requests (a 401 of a refresh without a session, a wrong password) are logged by the
 * browser as "Failed to load resource" and are not errors.
 */
export function browserPerTest(baseURL: string): { browser: () => Browser; context: () => BrowserContext; page: () => Page } {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  let errors: string[] = [];
  let trail: string[] = [];
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    if (!browser) throw new Error('no browser');
    context = await newContext(browser, baseURL);
    page = await context.newPage();
    errors = collectErrors(page);
    trail = followTrail(page);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && page) await keepEvidence(page, ctx.task.name, trail);
    await context?.close();
    expect(errors.filter((e) => !e.startsWith('Failed to load resource'))).toEqual([]);
  });
  const get = <T,>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`no ${what} outside a test`);
    return v;
  };
  return { browser: () => get(browser, 'browser'), context: () => get(context, 'context'), page: () => get(page, 'page') };
}
