import type { Connector, Provider } from '../types.ts';
import { githubConnector } from './github.ts';
import { googleDriveConnector } from './google-drive.ts';
import { notionConnector } from './notion.ts';
import { onedriveConnector } from './onedrive.ts';

/** Every provider's connector. */
export const connectors: Record<Provider, Connector> = {
  github: githubConnector,
  notion: notionConnector,
  google_drive: googleDriveConnector,
  onedrive: onedriveConnector,
};
