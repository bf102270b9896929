import { createHash } from 'node:crypto';
import type { SQSMessageAttributes, SQSRecord } from 'aws-lambda';

/** What the local queue keeps per message; the fields SQS itself tracks. */
export interface StoredMessage {
  messageId: string;
  body: string;
  messageAttributes: SQSMessageAttributes;
  sentAt: number;
  receiveCount: number;
  firstReceiveAt: number | undefined;
  /** epoch ms from which the message can be received again */
  visibleAt: number;
  /** the handle of the latest receive; a delete with an older one is ignored, as in SQS */
  receiptHandle: string | undefined;
  lastError: string | undefined;
}

/** A String message attribute in the shape Lambda delivers it. */
export function stringAttribute(value: string): SQSMessageAttributes[string] {
  return { stringValue: value, stringListValues: [], binaryListValues: [], dataType: 'String' };
}

/**
 * The record exactly as the Lambda SQS event source delivers it, so worker handlers cannot tell the
 * local queue from SQS.
 */
export function toSqsRecord(message: StoredMessage, eventSourceARN: string, awsRegion: string): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle ?? '',
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(message.sentAt),
      SenderId: 'memorysync-local',
      ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt ?? message.sentAt),
    },
    messageAttributes: message.messageAttributes,
    md5OfBody: createHash('md5').update(message.body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion,
  };
}
