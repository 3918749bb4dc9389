/**
 * Opt-in dependency injection for inversify 8: typed tokens and a `ContainerModule` that binds a
 * broker, a producer and a consumer. Switching transport = changing the URL. Core's main entry never
 * imports inversify; this subpath (`@ferry/core/inversify`) does.
 *
 * @example
 * const container = new Container();
 * container.load(ferryModule({ url: process.env.FERRY_URL }));
 * const producer = await container.getAsync(FERRY_PRODUCER);
 * // in a class: constructor(@inject(FERRY_BROKER) private readonly broker: Broker) {}
 *
 * @packageDocumentation
 * @module @ferry/core/inversify
 */
import { ContainerModule, type ServiceIdentifier } from 'inversify';
import type { Broker } from '../broker.js';
import { connect } from '../connect.js';
import type { Consumer } from '../consumer.js';
import type { ConnectOptions } from '../options.js';
import type { Producer } from '../producer.js';

/** The broker. Resolve with `container.getAsync` when bound by URL; inject with `@inject(FERRY_BROKER)`. */
export const FERRY_BROKER: ServiceIdentifier<Broker> = Symbol.for('ferry.Broker');
/** A producer of the broker (one per container, singleton). */
export const FERRY_PRODUCER: ServiceIdentifier<Producer> = Symbol.for('ferry.Producer');
/** A consumer of the broker (one per container, singleton). */
export const FERRY_CONSUMER: ServiceIdentifier<Consumer> = Symbol.for('ferry.Consumer');

/** The tokens, grouped. */
export const FERRY = Object.freeze({
  /** {@link FERRY_BROKER} */
  Broker: FERRY_BROKER,
  /** {@link FERRY_PRODUCER} */
  Producer: FERRY_PRODUCER,
  /** {@link FERRY_CONSUMER} */
  Consumer: FERRY_CONSUMER,
});

/** Options of {@link ferryModule}. */
export type FerryModuleOptions =
  /** Connect lazily, as an async singleton: resolve with `getAsync`; unbinding (`unbindAllAsync`) closes it. */
  | {
      /** The broker URL; default `FERRY_URL`, else `memory://`. */
      readonly url?: string | undefined;
      /** Options for `connect()`. */
      readonly options?: ConnectOptions;
      /** Not with `url`: give one or the other. */
      readonly broker?: never;
    }
  /** Bind an already-connected broker, for synchronous `get`. The module does not close it: its owner does. */
  | {
      /** The connected broker to bind. */
      readonly broker: Broker;
      /** Not with `broker`. */
      readonly url?: never;
      /** Not with `broker`: the broker is already connected. */
      readonly options?: never;
    };

/**
 * A `ContainerModule` binding {@link FERRY_BROKER}, {@link FERRY_PRODUCER} and {@link FERRY_CONSUMER}
 * as singletons. With `{ url }` the broker connects on first `getAsync` and is closed when unbound
 * (`container.unbindAllAsync()` / `unloadAsync`); producer and consumer are closed on deactivation too.
 */
export function ferryModule(options: FerryModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (options.broker !== undefined) {
      const broker = options.broker;
      bind(FERRY_BROKER).toConstantValue(broker);
      bind(FERRY_PRODUCER)
        .toDynamicValue(() => broker.producer())
        .inSingletonScope()
        .onDeactivation((producer) => producer.close());
      bind(FERRY_CONSUMER)
        .toDynamicValue(() => broker.consumer())
        .inSingletonScope()
        .onDeactivation((consumer) => consumer.close());
      return;
    }
    bind(FERRY_BROKER)
      .toDynamicValue(() => connect(options.url, options.options))
      .inSingletonScope()
      .onDeactivation((broker) => broker.close());
    bind(FERRY_PRODUCER)
      .toDynamicValue(async (context) => (await context.getAsync(FERRY_BROKER)).producer())
      .inSingletonScope()
      .onDeactivation((producer) => producer.close());
    bind(FERRY_CONSUMER)
      .toDynamicValue(async (context) => (await context.getAsync(FERRY_BROKER)).consumer())
      .inSingletonScope()
      .onDeactivation((consumer) => consumer.close());
  });
}
