// The entry of a sending thread: loads TypeScript through tsx (as the `outreach` binary does), then the thread itself.
import { register } from 'tsx/esm/api';

register();
await import('./sending-thread.ts');
