// A sending thread for tests: the product's thread, except that a message to die@<domain> ends the thread at once (a crash mid-send).
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
// After the thread's own listener: the first listener starts the port, and messages that arrive before a later one is added pass it by.
await import('../../../connector/delivery/sending-thread.ts');
parentPort.on('message', (m) => {
  if (m.type === 'send' && m.request.envelope.to.startsWith('die@')) process.exit(3);
});
