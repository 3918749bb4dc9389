import { queue } from '@ferry/core';
import { deferred, waitFor } from '@ferry/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAmqp } from './broker.js';
import { type PrivateNode, startPrivateNode } from './private-node.js';

/**
 * A memory alarm on a private RabbitMQ node (alarms are broker-wide: never on the shared node). RabbitMQ
 * blocks connections that publish; Ferry's consuming connection never publishes messages, so acks go on.
 */
describe('amqp: memory alarm (connection.blocked) on a private node', () => {
  let node: PrivateNode;
  beforeAll(async () => {
    node = await startPrivateNode();
  }, 120_000);
  afterAll(async () => {
    await node?.stop();
  }, 120_000);

  it('reports blocked in health and events, keeps consuming, and publishes go out once unblocked', async () => {
    const broker = await connectAmqp({ publishTimeout: 60_000 }, node.url);
    const events: string[] = [];
    broker.on('blocked', (reason) => events.push(`blocked:${reason}`));
    broker.on('unblocked', () => events.push('unblocked'));
    const q = queue('alarm-queue');
    const handled: number[] = [];
    const started: number[] = [];
    const hold = deferred();
    const producer = broker.producer();
    await broker.consumer().subscribe<number>(
      q,
      async (m) => {
        started.push(m.data);
        if (m.data < 5) await hold.promise;
        handled.push(m.data);
      },
      { concurrency: 5 },
    );
    for (let n = 0; n < 5; n++) await producer.publish(q, { type: 'alarm', data: n });
    await waitFor(() => started.length === 5, 10_000, 'five handlers holding their messages');
    const unacked = async (): Promise<number> => {
      const line = (await node.ctl('list_queues', 'name', 'messages_unacknowledged'))
        .split('\n')
        .find((l) => l.startsWith('alarm-queue'));
      return Number(line?.split(/\s+/)[1] ?? Number.NaN);
    };
    expect(await unacked()).toBe(5);

    await node.ctl('set_vm_memory_high_watermark', '0');
    try {
      // A publish is what makes RabbitMQ block the connection; it waits instead of failing.
      let resolved = false;
      const waiting = producer.publish(q, { type: 'alarm', data: 5 }).then(() => (resolved = true));
      await waitFor(() => events.some((e) => e.startsWith('blocked')), 15_000, 'the blocked event');
      expect(broker.health().details?.['blocked']).toBe(true);
      expect(broker.health().status).toBe('up');
      expect(resolved).toBe(false);
      // Blocked publishing never stalls acks: they travel on the consuming connection.
      hold.resolve();
      await waitFor(() => handled.length === 5, 10_000, 'the held handlers to finish');
      await waitFor(async () => (await unacked()) === 0, 10_000, 'the acks to reach RabbitMQ during the alarm');
      expect(resolved).toBe(false);
      await node.ctl('set_vm_memory_high_watermark', '0.4');
      await waiting;
      await waitFor(() => events.includes('unblocked'), 15_000, 'the unblocked event');
      expect(broker.health().details?.['blocked']).toBe(false);
      await waitFor(() => handled.includes(5), 10_000, 'the message published during the alarm');
    } finally {
      await node.ctl('set_vm_memory_high_watermark', '0.4');
      await broker.close();
    }
  }, 120_000);
});
