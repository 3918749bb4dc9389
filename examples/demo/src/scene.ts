import { randomUUID } from 'node:crypto';
import type { Broker, Capabilities, EventExtras, Headers, Producer } from '@ferry/core';

/**
 * Every message of a run carries this header. Queues are durable: on a real broker, messages left over
 * from an earlier, interrupted run would otherwise be counted; handlers ack and skip them.
 */
export const RUN_HEADER = 'x-demo-run';

/** What every chapter gets: the broker, one producer, and a narrator. */
export interface Scene {
  readonly broker: Broker;
  readonly producer: Producer;
  /** Id and headers for a message of this run; `name` keeps ids readable and unique per run. */
  readonly stamp: (name: string) => EventExtras & { readonly id: string; readonly headers: Headers };
  /** True when a received message belongs to this run. */
  readonly mine: (message: { readonly headers: Headers }) => boolean;
  /** Prints one line of the story, indented under the chapter title (`depth` adds indentation). */
  readonly say: (line: string, depth?: number) => void;
}

/** Boolean capabilities a chapter may need. */
export type Capability = {
  [K in keyof Capabilities]: Capabilities[K] extends boolean ? K : never;
}[keyof Capabilities];

/** One chapter of the story. */
export interface Chapter {
  readonly title: string;
  /** Capabilities the chapter needs; on a transport without them it is skipped with the reason. */
  readonly requires?: readonly Capability[];
  run(scene: Scene): Promise<void>;
}

export function createScene(broker: Broker, write: (line: string) => void): Scene {
  const run = randomUUID().slice(0, 8);
  return {
    broker,
    producer: broker.producer(),
    stamp: (name) => ({ id: `demo-${run}-${name}`, headers: { [RUN_HEADER]: run } }),
    mine: (message) => message.headers[RUN_HEADER] === run,
    say: (line, depth = 0) => write(`${'  '.repeat(depth + 1)}${line}`),
  };
}
