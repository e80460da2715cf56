import { defineConfig } from 'vitest/config';

// End-to-end tests: a real `switchyard serve --demo` (e2e/server.ts) and Debian's Chromium
// driven by playwright-core. One file at a time; the server is shared through globalSetup.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    globalSetup: ['e2e/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // No retry: a retried test starts from what its failed attempt left on the shared server,
    // so it fails again for another reason and hides the first. A failed test prints what its
    // page did and leaves a screenshot and its accessibility tree (e2e/browser.ts).
    // `expect.poll` waits as long as a locator does (10 s, e2e/browser.ts): its default of one
    // second is less than an autosave (700 ms after the edit) and its request on a busy machine.
    expect: { poll: { timeout: 10_000 } },
  },
});
