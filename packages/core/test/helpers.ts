import { afterEach } from 'vitest';
import type { Broker } from '../src/broker.js';
import { connect } from '../src/connect.js';
import type { ConnectOptions } from '../src/options.js';
import { randomUUID } from 'node:crypto';

/** A unique name per run, e.g. `orders-1a2b3c4d`. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `condition` until it holds; fails with `message` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000, message = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise with its resolve function, for handlers that must be held open. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * Connects memory brokers for one test file and closes them after each test:
 * `const open = memoryBrokers(); const broker = await open('hub-1', { source: 'x' });`
 */
export function memoryBrokers(): (hub: string, options?: ConnectOptions) => Promise<Broker> {
  const brokers: Broker[] = [];
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
  });
  return async (hub, options = {}) => {
    const broker = await connect(`memory://${hub}`, options);
    brokers.push(broker);
    return broker;
  };
}
