import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const core = new URL('../dist/index.js', import.meta.url).href;

describe('memory transport in a real process', () => {
  it('keeps the process alive for a pending retry while a broker is open, and lets it exit after close()', async () => {
    const script = `
      import { connect, queue } from ${JSON.stringify(core)};
      const broker = await connect('memory://process-test');
      let done; const succeeded = new Promise((r) => (done = r));
      await broker.consumer().subscribe(queue('jobs'), (m) => {
        if (m.attempt === 1) throw new Error('transient');
        done(m.attempt);
      }, { retry: { initialDelayMs: 50, jitter: 0 } });
      await broker.producer().publish(queue('jobs'), { type: 'job', data: 1 });
      console.log('succeeded on attempt', await succeeded);
      await broker.close();
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      timeout: 10_000,
    });
    expect(stdout.trim()).toBe('succeeded on attempt 2');
  });
});
