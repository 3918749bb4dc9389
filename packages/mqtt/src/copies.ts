import type { IPublishPacket } from 'mqtt';
import { ConfigurationError, type Destination, type Envelope } from '@ferry/core';
import type { Session } from './connection.js';
import type { Outgoing } from './publisher.js';
import { retryTopic, type SubscriptionPlan } from './topics.js';
import { type PublishProperties, toWire } from './wire.js';

/** The retry copy of a message: to the subscription's own queue or group only, with the next attempt. */
export function retryCopy(
  envelope: Envelope,
  topicName: string,
  plan: SubscriptionPlan,
  source: Destination,
  protocolVersion: 4 | 5,
): Outgoing {
  // 3.1.1 has no headers: the attempt count must travel in a structured envelope.
  const mode = protocolVersion === 5 && source.options.contentMode !== 'structured' ? 'binary' : 'structured';
  const wire = toWire(envelope, mode, protocolVersion);
  return {
    topic: retryTopic(plan, topicName),
    payload: wire.payload,
    qos: 1,
    retain: false,
    properties: wire.properties,
    unrouted: 'wait',
    label: `the retry topic of ${plan.label}`,
  };
}

/** Hand-off: a message this session will not handle, byte for byte, to its queue or group. */
export function forwardedCopy(packet: IPublishPacket, plan: SubscriptionPlan, protocolVersion: 4 | 5): Outgoing {
  const properties = packet.properties;
  const copy: PublishProperties = {};
  if (properties?.userProperties !== undefined) copy.userProperties = properties.userProperties;
  if (properties?.contentType !== undefined) copy.contentType = properties.contentType;
  if (properties?.correlationData !== undefined) copy.correlationData = properties.correlationData;
  return {
    topic: retryTopic(plan, packet.topic),
    payload: packet.payload as Buffer,
    qos: 1,
    retain: false,
    properties: protocolVersion === 5 ? copy : undefined,
    unrouted: 'wait',
    label: plan.label,
  };
}

/** UNSUBSCRIBEs `filters`; resolves on the UNSUBACK, or after 2 s. */
export function unsubscribe(session: Session, filters: readonly string[]): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2_000);
    session.client.unsubscribe([...filters], () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SUBSCRIBEs a plan's filters at QoS 1; resolves on the SUBACK. @throws ConfigurationError when the broker refuses one */
export function subscribeFilters(session: Session, plan: SubscriptionPlan): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    session.client.subscribe([...plan.filters], { qos: 1 }, (error, granted) => {
      if (error !== undefined && error !== null) {
        reject(
          new ConfigurationError(`The MQTT broker refused SUBSCRIBE for ${plan.label}: ${error.message}`, {
            cause: error,
          }),
        );
        return;
      }
      const refused = (granted ?? []).filter((g) => g.qos >= 0x80);
      if (refused.length > 0) {
        reject(
          new ConfigurationError(
            `The MQTT broker refused SUBSCRIBE ${refused.map((g) => g.topic).join(', ')} for ${plan.label} (reason code 0x${refused[0]!.qos.toString(16)}): check the broker's ACL and that it supports these filters`,
          ),
        );
        return;
      }
      resolve();
    });
  });
}
