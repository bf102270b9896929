export { createSqsQueue, type SqsQueueOptions } from './sqs-queue.ts';
export { InvalidTaskMessageError, sqsRecordToTask, taskMessageSchema } from './sqs-record.ts';
