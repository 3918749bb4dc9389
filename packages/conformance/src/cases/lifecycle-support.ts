import { type Broker, FerryError, type OutgoingMessage, type Producer, type Queue, type Topic } from '@ferry/core';
import type { CaseContext } from '../types.js';

/** Publishes with up to 5 tries on a typed failure, keeping the id (as Watermill's publishWithRetry). */
export async function publishWithRetry(producer: Producer, to: Queue | Topic, message: OutgoingMessage): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await producer.publish(to, message);
      return;
    } catch (error) {
      if (!(error instanceof FerryError) || attempt >= 5) throw error;
    }
  }
}

/** Resolves when `broker` reports a status other than `up`. */
export function whenDown(ctx: CaseContext, broker: Broker, what: string): Promise<void> {
  return ctx.waitFor(() => broker.health().status !== 'up', `${what} to notice the outage`);
}

export function whenUp(ctx: CaseContext, broker: Broker, what: string): Promise<void> {
  return ctx.waitFor(() => broker.health().status === 'up', `${what} to reconnect`);
}
