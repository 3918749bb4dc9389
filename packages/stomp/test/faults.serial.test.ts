import { describeConformance } from '@ferry/conformance';
import { STOMP_CAPABILITIES } from '../src/index.js';
import { conformanceOptions, rabbitmqctl } from './broker.js';

describeConformance({
  name: 'stomp (RabbitMQ 3.10) faults',
  capabilities: STOMP_CAPABILITIES,
  ...conformanceOptions(),
  faults: {
    ...conformanceOptions().faults,
    dropConnections: async () => {
      await rabbitmqctl('close_all_connections', 'ferry conformance: dropConnections');
    },
    stopBroker: async () => {
      await rabbitmqctl('stop_app');
    },
    startBroker: async () => {
      await rabbitmqctl('start_app');
      await rabbitmqctl('await_startup');
    },
  },
  only: 'exclusive',
});
