import { describeConformance } from '@ferry/conformance';
import { AMQP_CAPABILITIES } from '../src/index.js';
import { conformanceOptions } from './broker.js';

describeConformance({
  name: 'amqp (RabbitMQ 3.10)',
  capabilities: AMQP_CAPABILITIES,
  ...conformanceOptions(),
  only: 'shared',
});
