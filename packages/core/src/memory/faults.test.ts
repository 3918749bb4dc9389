import { describe, expect, it } from 'vitest';
import { deferred, memoryBrokers, rejection, uniqueName, waitFor } from '../../test/helpers.js';
import { connect } from '../connect.js';
import { queue } from '../destination.js';
import { ErrorCode } from '../errors.js';
import type { Message } from '../message.js';
import { memoryHub } from './hub.js';

const open = memoryBrokers();

describe('memory hub fault injection: stop/start and named connections', () => {
  it('stop() keeps every connection down until start(); waiting publishes then go out and nothing is lost', async () => {
    const hub = uniqueName('hub');
    const producerBroker = await open(hub, { publishTimeout: 5_000 });
    const consumerBroker = await open(hub);
    const q = queue(uniqueName('q'));
    const got: string[] = [];
    await consumerBroker.consumer().subscribe<string>(q, (m) => void got.push(m.data));
    memoryHub(hub).stop();
    expect(memoryHub(hub).stopped).toBe(true);
    expect(producerBroker.health().status).toBe('reconnecting');
    const late = await open(hub);
    expect(late.health().status).toBe('reconnecting');
    let resolved = false;
    const publishing = producerBroker
      .producer()
      .publish(q, { type: 't', data: 'during' })
      .then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 30)); // observation window: nothing may go out while stopped
    expect(resolved).toBe(false);
    expect(got).toEqual([]);
    memoryHub(hub).start();
    await publishing;
    await waitFor(() => got.length === 1, 2_000, 'the buffered publish to arrive');
    expect(got).toEqual(['during']);
    expect(late.health().status).toBe('up');
  });

  it('a publish waiting on a stopped hub fails with FERRY_PUBLISH_TIMEOUT after publishTimeout', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub, { publishTimeout: 50 });
    memoryHub(hub).stop();
    const error = await rejection(broker.producer().publish(queue(uniqueName('q')), { type: 't', data: 1 }));
    expect(error).toMatchObject({ code: ErrorCode.PUBLISH_TIMEOUT });
    memoryHub(hub).start();
  });

  it('drops and stops only the connection with the given connectionName; its unacked message goes to another consumer', async () => {
    const hub = uniqueName('hub');
    const a = await open(hub, { connectionName: 'consumer-a' });
    const b = await open(hub, { connectionName: 'consumer-b' });
    const q = queue(uniqueName('q'));
    const held = deferred();
    const byA: Message[] = [];
    const byB: Message[] = [];
    await a.consumer().subscribe(q, async (m) => {
      byA.push(m);
      await held.promise;
    });
    await b.producer().publish(q, { type: 't', data: 1 });
    await waitFor(() => byA.length === 1, 2_000, 'consumer a to take the message');
    await b.consumer().subscribe(q, (m) => void byB.push(m));
    memoryHub(hub).stop('consumer-a');
    expect(a.health().status).toBe('reconnecting');
    expect(b.health().status).toBe('up');
    expect(memoryHub(hub).stopped).toBe(false);
    await waitFor(() => byB.length === 1, 2_000, 'consumer b to get the redelivery');
    expect(byB[0]).toMatchObject({ id: byA[0]!.id, redelivered: true, attempt: 2 });
    held.resolve();
    memoryHub(hub).start('consumer-a');
    await waitFor(() => a.health().status === 'up', 2_000, 'consumer a to come back');
    memoryHub(hub).dropConnections(10, 'consumer-b');
    expect(a.health().status).toBe('up');
    await waitFor(() => b.health().status === 'up', 2_000, 'consumer b to come back');
  });

  it('rejects a connectionName that is not visible ASCII', async () => {
    await expect(connect('memory://x', { connectionName: 'has space' })).rejects.toMatchObject({
      code: ErrorCode.CONFIGURATION,
    });
  });
});

describe('consumer close racing a subscribe', () => {
  it('close() waits for a subscribe still in progress; that subscribe rejects with ClosedError and delivers nothing', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const consumer = broker.consumer();
    const got: unknown[] = [];
    const order: string[] = [];
    const subscribing = consumer
      .subscribe(q, (m) => void got.push(m.data))
      .then(
        () => order.push('subscribe resolved'),
        (error: unknown) => order.push(`subscribe rejected ${(error as { code?: string }).code}`),
      );
    await consumer.close();
    order.push('close resolved');
    await subscribing;
    expect(order).toEqual([`subscribe rejected ${ErrorCode.CLOSED}`, 'close resolved']);
    await broker.producer().publish(q, { type: 't', data: 1 });
    expect(memoryHub(hub).stats(q.name)).toMatchObject({ ready: 1, consumers: 0 });
    expect(got).toEqual([]);
  });
});
