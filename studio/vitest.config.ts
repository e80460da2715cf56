import { defineConfig } from 'vitest/config';

// Unit tests: pure helpers, no DOM.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
