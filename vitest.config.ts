import { defineConfig } from 'vitest/config';

/**
 * Two projects. `default` runs every test file in parallel. `serial` runs the files that stop, restart or
 * cut the shared brokers (`*.serial.test.ts`), one at a time; `npm test` runs it after `default`, so
 * nothing else uses the brokers meanwhile.
 */
export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          include: ['packages/*/{src,test}/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
          exclude: ['**/*.serial.test.ts', '**/node_modules/**', '**/dist/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: ['packages/*/{src,test}/**/*.serial.test.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
