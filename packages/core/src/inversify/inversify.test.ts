import { Container, inject, injectable } from 'inversify';
import { describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../test/helpers.js';
import type { Broker } from '../broker.js';
import { connect } from '../connect.js';
import { queue } from '../destination.js';
import { ErrorCode } from '../errors.js';
import type { Producer } from '../producer.js';
import { FERRY, FERRY_BROKER, FERRY_CONSUMER, FERRY_PRODUCER, ferryModule } from './index.js';

@injectable()
class OrderService {
  constructor(
    @inject(FERRY_PRODUCER) private readonly producer: Producer,
    @inject(FERRY_BROKER) readonly broker: Broker,
  ) {}

  place(id: string): Promise<void> {
    return this.producer.publish(queue('di-orders'), { type: 'order.placed', data: { id } });
  }
}

describe('@ferry/core/inversify', () => {
  it('binds broker, producer and consumer by URL as async singletons and closes the broker on unbind', async () => {
    const hub = uniqueName('di');
    const container = new Container();
    container.load(ferryModule({ url: `memory://${hub}` }));
    container.bind(OrderService).toSelf().inSingletonScope();
    const broker = await container.getAsync(FERRY_BROKER);
    expect(broker.transport).toBe('memory');
    expect(await container.getAsync(FERRY.Broker)).toBe(broker);
    const service = await container.getAsync(OrderService);
    expect(service.broker).toBe(broker);
    const consumer = await container.getAsync(FERRY_CONSUMER);
    const got: unknown[] = [];
    await consumer.subscribe(queue('di-orders'), (m) => void got.push(m.data));
    await service.place('o-1');
    await waitFor(() => got.length === 1);
    expect(got).toEqual([{ id: 'o-1' }]);
    await container.unbindAllAsync();
    expect(broker.health().status).toBe('down');
    await expect(service.place('o-2')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it('binds an already-connected broker for synchronous get, and switching the URL switches the transport only', async () => {
    const broker = await connect(`memory://${uniqueName('di')}`);
    const container = new Container();
    container.load(ferryModule({ broker }));
    expect(container.get(FERRY_BROKER)).toBe(broker);
    const producer = container.get(FERRY_PRODUCER);
    expect(container.get(FERRY_PRODUCER)).toBe(producer);
    await container.unbindAllAsync();
    // The module does not own a broker it was given: it stays usable.
    expect(broker.health().status).toBe('up');
    await broker.close();
  });

  it('can bind without decorators through toResolvedValue', async () => {
    const container = new Container();
    container.load(ferryModule({ url: `memory://${uniqueName('di')}` }));
    const TOKEN = Symbol('transportName');
    container.bind<string>(TOKEN).toResolvedValue((broker: Broker) => broker.transport, [FERRY_BROKER]);
    expect(await container.getAsync<string>(TOKEN)).toBe('memory');
    await container.unbindAllAsync();
  });
});
