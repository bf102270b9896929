import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { createApp } from '#shared/app.ts';
import { loadConfig } from '#shared/config.ts';

// Built once per cold start (top-level promise); every invocation reuses the adapters and the middy chain.
const app = createApp(loadConfig({ ...process.env, DEV_BOOTSTRAP: 'false', MEMORYSYNC_DATA_DIR: '/tmp/memorysync' }));

export const handler = async (event: APIGatewayProxyEvent, context: Context) => (await app).api(event, context);
