// Moleculer 0.14 with its AMQP transporter: two ServiceBrokers in this process, on two connections, one
// emitting and one running a service with an event handler, so every event crosses RabbitMQ. Settings:
// `prefetch` 100, persistent messages (`messageOptions.persistent`), TCP_NODELAY (`socketOptions`), a
// namespace unique per run, and `disableBalancer: true`, which hands balancing to RabbitMQ: events go
// to the transporter's durable queue `MOL-<namespace>.EVENTB.<service>.<event>` and are acked after the
// handler, with `prefetch` unacknowledged at most, the reliable mode comparable to the other subjects.
// (With Moleculer's default in-process balancer, an event goes to the handler node's own queue and is
// consumed without acks, so prefetch plays no part.) The internal `$node` services are off: they play no
// part in events and would leave durable request queues behind.
//
// What emit() waits for: nothing on the wire. The transporter publishes on a plain (non-confirm) channel
// and resolves at once (AmqpTransporter.send returns a resolved promise after channel.sendToQueue), so
// there is no publisher confirm and no flow control from the broker.
import { createRequire } from 'node:module';

const { ServiceBroker } = createRequire(import.meta.url)('moleculer');

export const MOLECULER_SERVICE = 'sink';
export const MOLECULER_EVENT = 'bench.event';
/** Moleculer's packet types: each node has a queue per type, `MOL-<ns>.<TYPE>.<nodeID>`. */
const PACKET_TYPES = ['REQ', 'RES', 'EVENT', 'DISCOVER', 'INFO', 'DISCONNECT', 'HEARTBEAT', 'PING', 'PONG'];
/** The broadcast packet types: each has a fanout exchange `MOL-<ns>.<TYPE>`. */
const BROADCAST_TYPES = ['DISCOVER', 'INFO', 'DISCONNECT', 'HEARTBEAT', 'PING', 'PONG', 'EVENT'];

/**
 * Starts the handling broker, then the emitting one, and waits until the emitter has discovered the
 * handler's service. Returns { emit(data): Promise, onEvent (settable), close(), queues, exchanges }
 * (what RabbitMQ holds for them afterwards, for the caller to delete).
 */
export async function moleculerPeer({ url, namespace, prefetch }) {
  const state = { onEvent: () => undefined };
  const transporter = {
    type: 'AMQP',
    options: {
      url,
      prefetch,
      socketOptions: { noDelay: true },
      messageOptions: { persistent: true },
    },
  };
  const common = {
    namespace,
    transporter,
    disableBalancer: true,
    logger: false,
    internalServices: false,
  };
  const handler = new ServiceBroker({ ...common, nodeID: `${namespace}-handler` });
  handler.createService({
    name: MOLECULER_SERVICE,
    events: {
      [MOLECULER_EVENT](ctx) {
        state.onEvent(ctx.params);
      },
    },
  });
  const emitter = new ServiceBroker({ ...common, nodeID: `${namespace}-emitter` });
  const prefix = `MOL-${namespace}`;
  const nodes = [handler.nodeID, emitter.nodeID];
  const queues = [
    `${prefix}.EVENTB.${MOLECULER_SERVICE}.${MOLECULER_EVENT}`,
    ...nodes.flatMap((node) => PACKET_TYPES.map((type) => `${prefix}.${type}.${node}`)),
  ];
  const exchanges = BROADCAST_TYPES.map((type) => `${prefix}.${type}`);
  try {
    await handler.start();
    await emitter.start();
    await emitter.waitForServices(MOLECULER_SERVICE, 10_000);
  } catch (error) {
    await Promise.allSettled([emitter.stop(), handler.stop()]);
    throw error;
  }
  return {
    emit: (data) => emitter.emit(MOLECULER_EVENT, data),
    set onEvent(fn) {
      state.onEvent = fn;
    },
    async close() {
      await emitter.stop();
      await handler.stop();
    },
    queues,
    exchanges,
  };
}
