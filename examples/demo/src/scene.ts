import { randomUUID } from 'node:crypto';
import type { Broker, Capabilities, EventExtras, Headers, Producer } from '@ferry/core';
import { paint } from './style.js';

/**
 * Every message of a run carries this header. Queues are durable: on a real broker, messages left over
 * from an earlier, interrupted run would otherwise be counted; handlers ack and skip them.
 */
export const RUN_HEADER = 'x-demo-run';

/** What every chapter gets: the broker, one producer, and a narrator. */
export interface Scene {
  readonly broker: Broker;
  /**
   * The URL the demo connected to, credentials included, for chapters that open connections of their
   * own (the examples do). `broker.health().url` hides the password.
   */
  readonly url: string;
  /** A short id of this run (8 hex digits): names made from it are new on every run. */
  readonly run: string;
  readonly producer: Producer;
  /** Id and headers for a message of this run; `name` keeps ids readable and unique per run. */
  readonly stamp: (name: string) => EventExtras & { readonly id: string; readonly headers: Headers };
  /** True when a received message belongs to this run. */
  readonly mine: (message: { readonly headers: Headers }) => boolean;
  /** Prints one line of the story, indented under the chapter title (`depth` adds indentation). */
  readonly say: (line: string, depth?: number) => void;
  /** Prints what the chapter proved (its expectations held), marked ✓. */
  readonly proved: (line: string) => void;
  /**
   * Prints an example's own narration (one or more lines) under the chapter: blank lines dropped, any
   * indentation as one level deeper, a step `2. …` as `2) …`; steps, instance names and cache tiers
   * coloured.
   */
  readonly relay: (text: string) => void;
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

export function createScene(broker: Broker, url: string, write: (line: string) => void): Scene {
  const run = randomUUID().slice(0, 8);
  const say = (line: string, depth = 0): void => write(`${'  '.repeat(depth + 1)}${line}`);
  return {
    broker,
    url,
    run,
    producer: broker.producer(),
    stamp: (name) => ({ id: `demo-${run}-${name}`, headers: { [RUN_HEADER]: run } }),
    mine: (message) => message.headers[RUN_HEADER] === run,
    say,
    proved: (line) => say(paint.ok(`✓ ${line}`)),
    relay: (text) => {
      for (const line of text.split('\n')) {
        const body = line.trimStart();
        if (body === '') continue;
        const indented = body.length < line.length;
        say(indented ? highlight(body) : heading(body), indented ? 1 : 0);
      }
    },
  };
}

/** An instance name in an example's narration: `user-service-1`, `demo-1a2b3-payment-2`. */
const INSTANCE = /(?<![\w-])(?:demo-[0-9a-f]+-)?[a-z]{3,}(?:-[a-z]+)*-\d+(?![\w-])/g;
/** Where a cache read was answered, in the user-cache narration. */
const TIER = /from (L1|Redis|the database)( \([^)]*\))?/g;
const TIER_PAINT: Readonly<Record<string, (text: string) => string>> = {
  L1: paint.ok,
  Redis: paint.code,
  'the database': paint.bad,
};

/** A top-level line of an example's narration: a step `2. …` becomes a bold `2) …`; a summary is bold. */
function heading(line: string): string {
  const step = /^(\d+)\. (.*)$/.exec(line);
  if (step !== null) return `${paint.step(`${step[1]})`)} ${paint.title(step[2] ?? '')}`;
  return line.startsWith('Summary') ? paint.title(line) : line;
}

/** An indented line of an example's narration, with instance names and cache tiers coloured. */
function highlight(line: string): string {
  return line
    .replace(INSTANCE, (name) => paint.actor(name))
    .replace(TIER, (text, tier: string) => (TIER_PAINT[tier] ?? paint.name)(text));
}
