import {
  connect,
  idempotency,
  type Broker,
  type ConnectOptions,
  type ConsumeMiddleware,
  type IdempotencyStore,
} from '@ferry/core';
import { DEFAULT_PREFIX, OrderPlaced, ordersTopic, type Order, type ServiceName } from './contract.js';

/** What a service does with an order: its business logic, nothing about messaging. */
export interface ServiceDefinition {
  readonly name: ServiceName;
  /** Handles one order and says what it did. A throw is retried with backoff, then dead-lettered. */
  handle(order: Order): string | Promise<string>;
}

/** One delivery a service instance acknowledged. */
export interface Delivered {
  readonly service: ServiceName;
  readonly instance: string;
  readonly messageId: string;
  /** The broker (or Ferry) flagged it as a redelivery. */
  readonly redelivered: boolean;
}

/** One run of a service's handler: what the idempotency middleware let through. */
export interface Handled extends Delivered {
  readonly orderId: string;
  /** What the handler said it did. */
  readonly outcome: string;
}

/** Who wants to know what the instances do (the CLI prints it, the tests count it). */
export interface ServiceObserver {
  /** Every acknowledged delivery, duplicates that the idempotency middleware absorbed included. */
  delivered?(delivery: Delivered): void;
  /** Every handler run. */
  handled?(run: Handled): void;
}

/** Options of {@link startServiceInstance}. */
export interface ServiceInstanceOptions {
  /** The broker URL: `memory://`, `amqp://…`, `mqtt://…`, `stomp://…`. */
  readonly url: string;
  readonly service: ServiceDefinition;
  /**
   * This instance's name, stable across its restarts and unique among running instances (e.g.
   * `payment-1`, a pod name). It is the connection name: on MQTT it names the persistent session the
   * instance resumes when it comes back (1-64 letters, digits, `.`, `_`, `-`).
   */
  readonly instance: string;
  /** The topic prefix (default `shop`): topic `<prefix>.order.placed`. */
  readonly prefix?: string;
  /** Where handled message ids are remembered; shared by every instance of the service. */
  readonly store: IdempotencyStore;
  /** More `connect()` options (reconnect delays, a logger, `mqtt.sessionExpirySec`…). */
  readonly connectOptions?: ConnectOptions;
  readonly observer?: ServiceObserver;
  /** How long a handler run holds its idempotency claim, ms. Default {@link CLAIM_TTL_MS}. */
  readonly claimTtlMs?: number;
}

/**
 * How long a handler run holds its idempotency claim, ms: far above a handler's run time (a few ms
 * here). An instance that dies mid-handler leaves its claim behind; a copy of the order redelivered
 * to another instance meanwhile fails its attempt with `FERRY_IN_PROGRESS` and is retried, and runs
 * once the claim has expired.
 */
export const CLAIM_TTL_MS = 10_000;

/**
 * The retry policy of every service: about 28 s of backoff (0.25 s doubling to 5 s, 10 attempts),
 * longer than {@link CLAIM_TTL_MS}, so the copy of an order whose handler died outlives the dead
 * handler's claim instead of going to the dead letter with `FERRY_IN_PROGRESS`. Core's default
 * (5 attempts, about 3 s) is shorter than the middleware's default claim (60 s).
 */
export const RETRY = { maxAttempts: 10, initialDelayMs: 250, maxDelayMs: 5_000 } as const;

/** One running instance of a service: one broker connection, one member of the service's group. */
export interface ServiceInstance {
  readonly service: ServiceName;
  readonly instance: string;
  readonly broker: Broker;
  /** Stops taking orders, finishes the one in hand, closes the connection. The group keeps what comes next. */
  close(): Promise<void>;
}

/**
 * Starts one instance of a service: it connects with its own name, and subscribes to the orders topic
 * in the service's group (the group is the service's name). Every group gets every order; the instances
 * of one group share them. The consumer runs core's `idempotency()` middleware on the shared store, so
 * a copy of an order the service already handled (a redelivery, a shop that sent it again) is
 * acknowledged without running the handler.
 */
export async function startServiceInstance(options: ServiceInstanceOptions): Promise<ServiceInstance> {
  const { service, instance, observer } = options;
  const name = service.name;
  const broker = await connect(options.url, {
    source: `order-processing/${name}`,
    ...options.connectOptions,
    connectionName: instance,
  });
  try {
    // Outermost, so it sees every delivery, also the ones idempotency() acknowledges without the handler.
    const acknowledged: ConsumeMiddleware = async (ctx, next) => {
      await next();
      const { id, redelivered } = ctx.message;
      observer?.delivered?.({ service: name, instance, messageId: id, redelivered });
    };
    const claimTtlMs = options.claimTtlMs ?? CLAIM_TTL_MS;
    const consumer = broker.consumer({
      middleware: [acknowledged, idempotency({ store: options.store, claimTtlMs })],
      retry: RETRY,
    });
    await consumer.subscribe(
      ordersTopic(options.prefix ?? DEFAULT_PREFIX),
      OrderPlaced,
      async (message) => {
        const outcome = await service.handle(message.data);
        const { id, redelivered } = message;
        observer?.handled?.({
          service: name,
          instance,
          messageId: id,
          redelivered,
          orderId: message.data.orderId,
          outcome,
        });
      },
      { group: name },
    );
  } catch (error) {
    await broker.close().catch(() => undefined);
    throw error;
  }
  return { service: name, instance, broker, close: () => broker.close() };
}
