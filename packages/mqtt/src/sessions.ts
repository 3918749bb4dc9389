import { randomBytes } from 'node:crypto';
import { shortHash } from './topics.js';

/**
 * Client ids of consumer sessions. A queue's or group's members are numbered per process and instance
 * id (slot 0, 1, …), so a consumer that comes back with the same instance id takes the lowest free
 * slot and resumes that slot's persistent session — with what the broker kept for it meanwhile — and
 * two consumers of one process never share a client id (the broker would throw one out).
 */
const slots = new Map<string, Map<number, Promise<void> | undefined>>();

/** Client ids of persistent sessions this process created, per broker (for tests that clean up). */
const created = new Map<string, Set<string>>();

/** A claimed slot: its client id, and how to give the slot back. */
export interface SlotLease {
  readonly clientId: string;
  readonly slot: number;
  /** Other live members of the same queue or group in this process (same instance id). */
  others(): number;
  /** Gives the slot back once `departure` settles; until then a claim of this slot waits for it. */
  releaseAfter(departure: Promise<void>): void;
}

function registryKey(broker: string, instanceId: string, sessionKey: string): string {
  return `${broker}|${instanceId}|${sessionKey}`;
}

/** The client id of slot `slot` of a queue or group for an instance id. */
export function memberClientId(instanceId: string, sessionKey: string, slot: number): string {
  return `ferry-${instanceId}-${shortHash(sessionKey)}-${slot}`;
}

/** True while this process uses (or is leaving) `slot` of a queue or group. */
export function slotInUse(broker: string, instanceId: string, sessionKey: string, slot: number): boolean {
  return slots.get(registryKey(broker, instanceId, sessionKey))?.has(slot) === true;
}

/**
 * Claims the lowest slot of a queue or group on one broker that is free, or being left (then waits,
 * at most `waitMs`, for its session to be closed, so the newcomer resumes it rather than opening one
 * more member session beside it).
 */
export async function claimSlot(
  broker: string,
  instanceId: string,
  sessionKey: string,
  waitMs = 10_000,
): Promise<SlotLease> {
  const key = registryKey(broker, instanceId, sessionKey);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let used = slots.get(key);
    if (used === undefined) slots.set(key, (used = new Map<number, Promise<void> | undefined>()));
    let slot = 0;
    let leaving: Promise<void> | undefined;
    while (used.has(slot)) {
      const departure = used.get(slot);
      if (departure !== undefined && leaving === undefined) {
        leaving = departure;
        break;
      }
      slot++;
    }
    if (leaving !== undefined && Date.now() < deadline) {
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([leaving.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, left).unref())]);
      continue;
    }
    while (used.has(slot)) slot++;
    return lease(key, used, slot, instanceId, sessionKey);
  }
}

/**
 * Claims exactly `slot` for a short piece of work (e.g. subscribing a session that waits for its
 * consumer) that ends with `work`: waits while the slot is being left (at most `waitMs`), gives up at
 * once when a consumer of this process holds it. The slot counts as being left from the claim on, so
 * a consumer that wants it waits for the work instead of opening another member session beside it.
 */
export async function claimSlotFor(
  broker: string,
  instanceId: string,
  sessionKey: string,
  slot: number,
  work: Promise<void>,
  waitMs = 10_000,
): Promise<string | undefined> {
  const key = registryKey(broker, instanceId, sessionKey);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let used = slots.get(key);
    if (used === undefined) slots.set(key, (used = new Map<number, Promise<void> | undefined>()));
    if (!used.has(slot)) {
      lease(key, used, slot, instanceId, sessionKey).releaseAfter(work);
      return memberClientId(instanceId, sessionKey, slot);
    }
    const leaving = used.get(slot);
    if (leaving === undefined || Date.now() >= deadline) return undefined;
    const left = Math.max(0, deadline - Date.now());
    await Promise.race([leaving, new Promise((resolve) => setTimeout(resolve, left).unref())]);
  }
}

function lease(
  key: string,
  used: Map<number, Promise<void> | undefined>,
  slot: number,
  instanceId: string,
  sessionKey: string,
): SlotLease {
  used.set(slot, undefined);
  let released = false;
  return {
    clientId: memberClientId(instanceId, sessionKey, slot),
    slot,
    others: () => [...used.entries()].filter(([other, leaving]) => other !== slot && leaving === undefined).length,
    releaseAfter: (departure) => {
      if (released) return;
      released = true;
      const settled = departure.catch(() => undefined);
      used.set(slot, settled);
      void settled.then(() => {
        if (used.get(slot) !== settled) return;
        used.delete(slot);
        if (used.size === 0 && slots.get(key) === used) slots.delete(key);
      });
    },
  };
}

/** A client id for a connection that keeps no session beyond its broker object. */
export function ephemeralClientId(instanceId: string, role: string): string {
  return `ferry-${instanceId}-${role}-${randomBytes(4).toString('hex')}`;
}

/** Records a persistent session this process made (tests remove them afterwards). */
export function recordSession(broker: string, clientId: string): void {
  let ids = created.get(broker);
  if (ids === undefined) created.set(broker, (ids = new Set()));
  ids.add(clientId);
}

/**
 * The client ids of the persistent sessions this process created, on `broker` (`host:port` as dialled)
 * or, without it, on any broker: for test clean-up (connecting with each id and a clean start removes
 * the session; on RabbitMQ, its `mqtt-subscription-<id>qos1` queue).
 */
export function persistentSessions(broker?: string): readonly string[] {
  if (broker !== undefined) return [...(created.get(broker) ?? [])];
  return [...new Set([...created.values()].flatMap((ids) => [...ids]))];
}

/**
 * How a closing subscription leaves its broker session: `keep` it (with what the broker keeps collecting
 * for it) for the consumer that comes back with the same instance id; `end` it (a private
 * subscription); or `hand-off` what it still holds to the other members of its queue or group, then
 * end it (another member goes on, or no one could ever resume this session).
 */
export type Departure = 'keep' | 'end' | 'hand-off';

/** How a subscription leaves: its departure, and what must happen before a hand-off. */
export interface Leaving {
  readonly departure: Departure;
  readonly prepare?: () => Promise<void>;
}

/**
 * How a subscription with `lease` (none: a private one) leaves when it closes. The last member of this
 * process keeps the queue's or group's messages until it comes back, in slot 0's session, the one a
 * returning consumer resumes first: a last member in another slot makes sure slot 0 is subscribed
 * (`reserveSlot0`), then hands what it holds to it. Any other member hands off, and so does every member
 * without a stable instance id or told to (`handOffOnClose`).
 */
export function leavingOf(
  lease: SlotLease | undefined,
  settings: { readonly stableInstance: boolean; readonly handOffOnClose: boolean },
  reserveSlot0: () => Promise<void>,
): Leaving {
  if (lease === undefined) return { departure: 'end' };
  if (!settings.stableInstance || settings.handOffOnClose || lease.others() > 0) return { departure: 'hand-off' };
  if (lease.slot === 0) return { departure: 'keep' };
  return { departure: 'hand-off', prepare: reserveSlot0 };
}
