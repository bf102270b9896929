import { loadConfig } from '#shared/config.ts';
import { createApp } from '#shared/app.ts';

/** Invoked by a CDK trigger on every deploy: migrations run in createApp, before anything else uses the schema. */
export const handler = async () => {
  const app = await createApp(loadConfig({ ...process.env, DEV_BOOTSTRAP: 'false', MEMORYSYNC_DATA_DIR: '/tmp/memorysync' }));
  await app.close();
  return { status: 'migrated' };
};
