import { delayBucket, queue, topic } from '@ferry/core';
import { describe, expect, it } from 'vitest';
import { retryPlan, subscriptionPlan } from '../../amqp/src/topology.js';
import { RABBITMQ } from '../src/topology.js';

/**
 * The STOMP and AMQP transports declare the same RabbitMQ queues (group queues, delay queues): their
 * names and arguments must stay identical, or one transport's declaration fails with 406 against the
 * other's, and AMQP and STOMP members of one group would not share a queue.
 */
describe('stomp and amqp agree on RabbitMQ topology', () => {
  it('group queues have the same name', () => {
    for (const [pattern, group] of [
      ['orders.created', 'billing'],
      ['orders.*', 'audit'],
      ['orders.#', 'x'],
    ] as const) {
      const t = topic(pattern);
      expect(RABBITMQ.subscription(t, group, 'id', 1).queueName).toBe(subscriptionPlan(t, group, 'id').name);
    }
    const q = queue('work');
    expect(RABBITMQ.subscription(q, undefined, 'id', 1).queueName).toBe(subscriptionPlan(q, undefined, 'id').name);
  });

  it('delay queues have the same name and arguments', () => {
    for (const [name, delay] of [
      ['orders', 200],
      ['orders.created.billing', 30_000],
      ['x'.repeat(250), 1_000],
    ] as const) {
      const bucket = delayBucket(delay);
      const amqp = retryPlan(name, bucket);
      const stomp = RABBITMQ.retryTarget(name, bucket);
      expect(stomp.destination).toBe(`/queue/${amqp.name}`);
      const args = amqp.options.arguments as Record<string, string | number>;
      for (const [key, value] of Object.entries(args)) expect(stomp.headers[key], key).toBe(String(value));
      expect(stomp.headers['durable']).toBe(String(amqp.options.durable));
    }
  });
});
