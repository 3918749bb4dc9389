import { describeConformance } from '@ferry/conformance';
import { STOMP_CAPABILITIES } from '../src/index.js';
import { conformanceOptions } from './broker.js';

describeConformance({
  name: 'stomp (RabbitMQ 3.10)',
  capabilities: STOMP_CAPABILITIES,
  reasons: {
    unroutableDetection:
      'STOMP has no mandatory flag: RabbitMQ receipts a SEND to a topic nobody subscribes to, and drops it',
  },
  ...conformanceOptions(),
  only: 'shared',
});
