import type { SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { TASK_FAMILIES, type Task } from '../../ports/queue.ts';

/** The wire form of a Task in an SQS message body. */
export const taskMessageSchema = z.object({
  id: z.string().min(1),
  family: z.enum(TASK_FAMILIES),
  tenantId: z.string().min(1).nullable(),
  type: z.string().min(1),
  payload: z.record(z.string(), z.unknown()),
  createdAt: z.iso.datetime({ offset: true }),
});

/** Raised for a message that is not a valid Task; the record should go to the DLQ, not be retried forever. */
export class InvalidTaskMessageError extends Error {
  constructor(
    readonly messageId: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidTaskMessageError';
  }
}

/**
 * Parses one record of an SQS Lambda event back into the Task the producer sent. The `family`
 * attribute, when present, must agree with the body, so a message put on the wrong queue is
 * caught instead of being run by the wrong worker.
 */
export function sqsRecordToTask(record: SQSRecord): Task {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    throw new InvalidTaskMessageError(record.messageId, `message ${record.messageId} body is not JSON`);
  }
  const parsed = taskMessageSchema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join('.') || '(body)').join(', ');
    throw new InvalidTaskMessageError(record.messageId, `message ${record.messageId} is not a valid task (${fields})`);
  }
  const family = record.messageAttributes?.family?.stringValue;
  if (family !== undefined && family !== parsed.data.family) {
    throw new InvalidTaskMessageError(
      record.messageId,
      `message ${record.messageId} family attribute ${family} does not match body family ${parsed.data.family}`,
    );
  }
  return parsed.data;
}
