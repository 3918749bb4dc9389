import type { ConnectOptions, IdempotencyStore } from '@ferry/core';
import { DEFAULT_PREFIX, SERVICE_NAMES, type ServiceName } from './contract.js';
import { inventory } from './inventory.js';
import { payment } from './payment.js';
import { startServiceInstance, type ServiceDefinition, type ServiceInstance, type ServiceObserver } from './service.js';
import { shipping } from './shipping.js';

/** The three services by name. */
export const SERVICES: Readonly<Record<ServiceName, ServiceDefinition>> = { payment, inventory, shipping };

/** The name of instance `n` (1, 2, …) of a service: `<base>-<service>-<n>`, the same every time it starts. */
export function instanceName(base: string, service: ServiceName, n: number): string {
  return `${base}-${service}-${n}`;
}

/** Options of {@link Fleet.start}. */
export interface FleetOptions {
  /** The broker URL. */
  readonly url: string;
  /** The topic prefix (default `shop`). */
  readonly prefix?: string;
  /** Instances per service; a service left out (or 0) does not run. */
  readonly instances: Partial<Record<ServiceName, number>>;
  /** The first part of every instance name (default: the prefix). */
  readonly instanceBase?: string;
  /** The idempotency store every instance shares. */
  readonly store: IdempotencyStore;
  /** More `connect()` options, the same for every instance or per instance name. */
  readonly connectOptions?: ConnectOptions | ((instance: string) => ConnectOptions);
  readonly observer?: ServiceObserver;
}

/**
 * Instances of the services, each with its own broker connection, as separate processes would run
 * them. A service, or one instance, can be stopped and started again under the same instance name, as
 * a restart would.
 */
export class Fleet {
  readonly #options: FleetOptions;
  /** Running instances by name. */
  readonly #running = new Map<string, ServiceInstance>();

  private constructor(options: FleetOptions) {
    this.#options = options;
  }

  /** Starts every instance of every service in `options.instances`, each subscribed when this resolves. */
  static async start(options: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(options);
    try {
      await Promise.all(SERVICE_NAMES.map((service) => fleet.startService(service)));
    } catch (error) {
      await fleet.close().catch(() => undefined);
      throw error;
    }
    return fleet;
  }

  /** Instances running now, of one service or of all, by name. */
  instances(service?: ServiceName): readonly ServiceInstance[] {
    return [...this.#running.values()]
      .filter((instance) => service === undefined || instance.service === service)
      .sort((a, b) => a.instance.localeCompare(b.instance));
  }

  /** Starts the instances of `service` that are not running, under the names they had. */
  async startService(service: ServiceName): Promise<void> {
    const count = this.#options.instances[service] ?? 0;
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => this.startInstance(service, i + 1)),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** Starts instance `n` (1, 2, …) of `service` unless it runs: it subscribes before this resolves. */
  async startInstance(service: ServiceName, n: number): Promise<ServiceInstance> {
    const { url, prefix = DEFAULT_PREFIX, store, observer, connectOptions } = this.#options;
    const instance = instanceName(this.#options.instanceBase ?? prefix, service, n);
    const running = this.#running.get(instance);
    if (running !== undefined) return running;
    const extra = typeof connectOptions === 'function' ? connectOptions(instance) : connectOptions;
    const started = await startServiceInstance({
      url,
      prefix,
      store,
      instance,
      service: SERVICES[service],
      ...(extra === undefined ? {} : { connectOptions: extra }),
      ...(observer === undefined ? {} : { observer }),
    });
    this.#running.set(instance, started);
    return started;
  }

  /** Stops instance `n` of `service` (a graceful close). */
  async stopInstance(service: ServiceName, n: number): Promise<void> {
    const name = instanceName(this.#options.instanceBase ?? this.#options.prefix ?? DEFAULT_PREFIX, service, n);
    const instance = this.#running.get(name);
    this.#running.delete(name);
    await instance?.close();
  }

  /** Stops every instance of `service` (a graceful close); its group keeps the orders placed meanwhile. */
  async stopService(service: ServiceName): Promise<void> {
    const instances = this.instances(service);
    for (const instance of instances) this.#running.delete(instance.instance);
    await Promise.all(instances.map((instance) => instance.close()));
  }

  /** Stops every service. */
  async close(): Promise<void> {
    await Promise.all(SERVICE_NAMES.map((service) => this.stopService(service)));
  }
}
