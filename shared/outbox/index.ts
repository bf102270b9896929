export { enqueueTasks } from './enqueue-tasks.ts';
export { createOutboxRelay } from './outbox-relay.ts';
export type { OutboxRelay, OutboxRelayOptions, RelayResult } from './outbox-relay.ts';
