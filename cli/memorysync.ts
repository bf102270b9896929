import { readFileSync, writeFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { createApp, openDatabase, type App } from '#shared/app.ts';
import { createBackup, restoreBackup } from '#shared/backup/index.ts';
import { loadConfig } from '#shared/config.ts';
import type { AuditMeta } from '#shared/services/identity-service.ts';
import { toMemoryResponse } from '#shared/services/memory-model.ts';
import { DEFAULT_REINDEX_BATCH, dropVectorTables, rebuildVectorIndex, reindex } from '#shared/tasks/reindex.ts';
import { SCOPES, type Principal } from '#shared/services/scope.ts';
import { REDRIVE_MAX_LIMIT, TASK_FAMILIES, type TaskFamily } from '#shared/ports/queue.ts';

/**
 * The operator's command line: `memorysync <command>`. It opens the same app as the server (the
 * configuration comes from the environment, e.g. MEMORYSYNC_DATA_DIR or DATABASE_URL) and closes it
 * when done. Every command prints a human summary, or one JSON document with `--json`.
 */

interface Output {
  json: boolean;
}

class CliError extends Error {}

const cliMeta = (): AuditMeta => ({ requestId: `cli-${Date.now().toString(36)}`, ipAddress: null, userAgent: 'memorysync-cli', audit: { written: false } });
const cliActor = () => ({ principal: null, meta: cliMeta() });

/** The principal CLI actions run as: the operator, acting as owner inside the named tenant. */
const operator = (tenantId: string): Principal => ({
  kind: 'session', tenantId, accountId: null, accountPublicId: 'cli', apiKeyId: null, role: 'owner', scopes: [...SCOPES],
  projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: true,
});

async function withApp<T>(run: (app: App) => Promise<T>, options: { tolerateVectorDimension?: boolean } = {}): Promise<T> {
  // Quiet by default: the CLI's own output is the interface, app logs go to stderr only when asked.
  const config = loadConfig({ LOG_LEVEL: 'ERROR', ...process.env });
  // `reindex --rebuild`: the vector table of the old dimension is dropped before the app opens it
  // (opening refuses a table of another dimension).
  if (options.tolerateVectorDimension) {
    const db = await openDatabase(config, config.MEMORYSYNC_DATA_DIR === ':memory:');
    try {
      await dropVectorTables(db.kysely);
    } finally {
      await db.close();
    }
  }
  const app = await createApp(config);
  try {
    return await run(app);
  } finally {
    await app.close();
  }
}

function print(out: Output, json: unknown, human: string) {
  process.stdout.write(out.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

/** A progress bar on stderr (only drawn on a terminal, so pipes and --json stay clean). */
function progressBar(out: Output, label: string) {
  if (out.json || !process.stderr.isTTY) return { update: (_done: number, _total: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done: number, total: number) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop: () => started && bar.stop(),
  };
}

async function tenantOrThrow(app: App, tenantId: string) {
  const tenant = await app.db.kysely.selectFrom('tenants').select(['id', 'name', 'status']).where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw new CliError(`tenant ${tenantId} not found`);
  return tenant;
}

async function endUserOrThrow(app: App, tenantId: string, endUserId: string) {
  const user = await app.db.kysely.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('external_id', '=', `${tenantId}:${endUserId}`).executeTakeFirst();
  if (!user) throw new CliError(`end user ${endUserId} not found in tenant ${tenantId}`);
  return user.id;
}

interface DeadLetterCounts {
  queue: string;
  total: number;
  families: Array<{ family: TaskFamily; messages: number }>;
}
interface RedriveResult {
  status: 'redriven';
  redriven: number;
  results: Array<{ family: TaskFamily; moved: number; remaining: number }>;
}

/**
 * The dead-letter commands either call a running server's admin routes (`--api`, with an operator's
 * access token in MEMORYSYNC_ADMIN_TOKEN: the local queue lives in that server's memory) or open the
 * app and use the queue adapter directly (QUEUE=sqs with SQS_DLQ_URLS and the operator's AWS
 * credentials). Either way the action is audited.
 */
async function deadLetterCall<T>(opts: { api?: string }, path: string, method: 'GET' | 'POST', direct: (app: App) => Promise<T>): Promise<T> {
  if (opts.api) {
    const token = process.env.MEMORYSYNC_ADMIN_TOKEN;
    if (!token) throw new CliError('--api needs an operator access token in MEMORYSYNC_ADMIN_TOKEN');
    const url = new URL(path, opts.api.endsWith('/') ? opts.api : `${opts.api}/`);
    const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}` } }).catch((e: Error) => {
      throw new CliError(`cannot reach ${url.origin}: ${e.message}`);
    });
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } } & T;
    if (!res.ok) throw new CliError(`${method} ${url.pathname} answered ${res.status}: ${body.error?.message ?? 'no error message'}`);
    return body;
  }
  // Checked before the app is opened: the answer does not need a database.
  const config = loadConfig({ LOG_LEVEL: 'ERROR', ...process.env });
  if (config.QUEUE === 'local') {
    throw new CliError("QUEUE=local keeps its dead letters in the running server's memory: use --api <server url> with MEMORYSYNC_ADMIN_TOKEN");
  }
  if (!config.SQS_DLQ_URLS) throw new CliError('no dead-letter queues configured: set SQS_DLQ_URLS (family → DLQ URL), or use --api');
  return withApp(direct);
}

export function buildProgram(): Command {
  const program = new Command('memorysync').description('MemorySync operator commands').showHelpAfterError();
  const json = new Option('--json', 'print one JSON document instead of text');

  program
    .command('create-tenant')
    .description('create a tenant with its data key and default project')
    .argument('<name>', 'organization name')
    .option('--owner-email <email>', 'also invite this address as the owner (token printed once)')
    .addOption(json)
    .action(async (name: string, opts: { ownerEmail?: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const result = await withApp(async (app) => {
        const { tenantId, projectId } = await app.db.kysely.transaction().execute(async (trx) => {
          const created = await app.identity.createTenant(name, trx);
          await app.admin.record(cliActor(), { eventType: 'admin.tenant_created', action: 'create', tenantId: created.tenantId, payload: { name } }, trx);
          return created;
        });
        const invitation = opts.ownerEmail
          ? await app.org.createInvitation({ tenantId, projectId: null, principal: operator(tenantId) }, { email: opts.ownerEmail, role: 'owner' }, cliMeta())
          : null;
        return { tenant_id: tenantId, name, default_project_id: projectId, ...(invitation ? { owner_invitation: { email: invitation.email, token: invitation.token, expires_at: invitation.expires_at } } : {}) };
      });
      const lines = [`Created tenant ${result.tenant_id} (${name})`, `  default project: ${result.default_project_id}`];
      if (result.owner_invitation) lines.push(`  owner invitation for ${result.owner_invitation.email} (shown once): ${result.owner_invitation.token}`, '  accept with POST /auth/invitations/accept');
      print(out, result, lines.join('\n'));
    });

  program
    .command('create-key')
    .description('create an API key for a tenant (the secret is printed once)')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--name <name>', 'key name', 'cli')
    .option('--scopes <list>', `comma-separated scopes (${SCOPES.join(', ')})`)
    .option('--project <id>', 'lock the key to this project')
    .addOption(new Option('--environment <env>', 'key environment').choices(['development', 'staging', 'production']).default('production'))
    .addOption(json)
    .action(async (opts: { tenant: string; name: string; scopes?: string; project?: string; environment: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const scopes = opts.scopes?.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = scopes?.filter((s) => !(SCOPES as readonly string[]).includes(s)) ?? [];
      if (unknown.length) throw new CliError(`unknown scope(s): ${unknown.join(', ')}; known: ${SCOPES.join(', ')}`);
      const key = await withApp(async (app) => {
        await tenantOrThrow(app, opts.tenant);
        if (opts.project) await app.identity.getProjectOrThrow({ tenantId: opts.tenant }, opts.project).catch(() => { throw new CliError(`project ${opts.project} not found in tenant ${opts.tenant}`); });
        return app.identity.createApiKey({ tenantId: opts.tenant, projectId: null, principal: operator(opts.tenant) }, { name: opts.name, environment: opts.environment, scopes, project_id: opts.project ?? null }, cliMeta());
      });
      print(out, key, [`Created API key ${key.id} "${key.name}" for tenant ${opts.tenant} (shown once):`, `  ${key.key}`, `  scopes: ${key.scopes.join(', ')}${key.project_id ? `; locked to ${key.project_id}` : ''}`].join('\n'));
    });

  program
    .command('reindex')
    .description('rebuild vectors from the encrypted memory text, in batches; resumable after an interruption')
    .option('--tenant <id>', 'only this tenant')
    .option('--project <id>', 'only this project (needs --tenant)')
    .option('--user <end user id>', 'only this end user (needs --tenant)')
    .option('--resume', 'continue the latest interrupted run of the same scope after its last committed batch')
    .option('--rebuild', "drop and recreate the vector table first (after an embedder dimension change); whole database only")
    .option('--batch-size <n>', 'memories per batch', (v) => Number.parseInt(v, 10), DEFAULT_REINDEX_BATCH)
    .addOption(json)
    .action(async (opts: { tenant?: string; project?: string; user?: string; resume?: boolean; rebuild?: boolean; batchSize: number; json?: boolean }) => {
      const out = { json: !!opts.json };
      if ((opts.user || opts.project) && !opts.tenant) throw new CliError('--user and --project need --tenant');
      if (opts.rebuild && (opts.tenant || opts.resume)) throw new CliError('--rebuild drops every vector: it cannot be combined with --tenant or --resume');
      if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new CliError('--batch-size must be a positive integer');
      const bar = progressBar(out, 'reindex');
      const result = await withApp(async (app) => {
        if (opts.tenant) await tenantOrThrow(app, opts.tenant);
        if (opts.project) await app.identity.getProjectOrThrow({ tenantId: opts.tenant! }, opts.project).catch(() => { throw new CliError(`project ${opts.project} not found in tenant ${opts.tenant}`); });
        const userId = opts.user ? await endUserOrThrow(app, opts.tenant!, opts.user) : undefined;
        const dropped = opts.rebuild ? await rebuildVectorIndex(app.db.kysely, app.vectors, app.embedder.dimension) : [];
        const r = await reindex({ db: app.db.kysely, memories: app.memories, embedder: app.embedder, clock: app.clock }, { tenantId: opts.tenant, projectId: opts.project, userId }, {
          resume: opts.resume, batchSize: opts.batchSize, onProgress: (p) => bar.update(p.done, p.total),
        });
        await app.admin.record(cliActor(), { eventType: 'admin.reindex', action: 'reindex', tenantId: opts.tenant ?? null, payload: { ...r, end_user_id: opts.user ?? null, project_id: opts.project ?? null, rebuilt: dropped } });
        return { ...r, rebuilt: dropped, dimension: app.embedder.dimension };
      }, { tolerateVectorDimension: !!opts.rebuild }).finally(() => bar.stop());
      print(out, result, `Reindexed ${result.reindexed} memories (run ${result.run_id}${result.resumed ? ', resumed' : ''}; ${result.total} in scope, ${result.batches} batches)${result.rebuilt.length ? `; rebuilt ${result.rebuilt.join(', ')} at ${result.dimension} dimensions` : ''}`);
    });

  program
    .command('backup')
    .description('write an encrypted backup of every table to the object store (or a file)')
    .option('--out <file>', 'write to this file instead of the object store')
    .addOption(json)
    .action(async (opts: { out?: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const bar = progressBar(out, 'backup');
      const result = await withApp(async (app) => {
        const backup = await createBackup({ db: app.db.kysely, keyRing: app.keyRing, now: () => app.clock.now() }, (p) => bar.update(p.done, p.total));
        const location = opts.out ?? `backups/memorysync-${app.clock.now().toISOString().replace(/[:.]/g, '-')}.msbk`;
        if (opts.out) writeFileSync(opts.out, backup.bytes, { mode: 0o600 });
        else await app.objects.put(location, backup.bytes, 'application/octet-stream');
        await app.admin.record(cliActor(), { eventType: 'admin.backup', action: 'backup', payload: { location, bytes: backup.bytes.length, tables: backup.tables } });
        return { location, stored_in: opts.out ? 'file' : app.objects.kind, bytes: backup.bytes.length, tables: backup.tables, skipped_derived: backup.skipped };
      }).finally(() => bar.stop());
      const rows = Object.values(result.tables).reduce((a, b) => a + b, 0);
      print(out, result, `Backed up ${rows} rows of ${Object.keys(result.tables).length} tables (${result.bytes} bytes, encrypted) to ${result.location}`);
    });

  program
    .command('restore')
    .description('restore a backup into an empty database, then rebuild the vector index')
    .argument('<file>', 'backup file (or an object-store key with --object)')
    .option('--object', 'read <file> from the object store')
    .option('--no-reindex', 'skip rebuilding the vector index afterwards')
    .addOption(json)
    .action(async (file: string, opts: { object?: boolean; reindex: boolean; json?: boolean }) => {
      const out = { json: !!opts.json };
      const bar = progressBar(out, 'restore');
      const result = await withApp(async (app) => {
        const bytes = opts.object ? await app.objects.get(file) : readFileSync(file);
        if (!bytes) throw new CliError(`object ${file} not found`);
        const restored = await restoreBackup({ db: app.db.kysely, keyRing: app.keyRing }, bytes, (p) => bar.update(p.done, p.total));
        const reindexed = opts.reindex ? await reindex({ db: app.db.kysely, memories: app.memories, embedder: app.embedder, clock: app.clock }, {}, { onProgress: (p) => bar.update(p.done, p.total) }) : null;
        await app.admin.record(cliActor(), { eventType: 'admin.restore', action: 'restore', payload: { source: file, tables: restored.tables } });
        return { ...restored, reindexed: reindexed?.reindexed ?? null };
      }).finally(() => bar.stop());
      const rows = Object.values(result.tables).reduce((a, b) => a + b, 0);
      print(out, result, `Restored ${rows} rows of ${Object.keys(result.tables).length} tables from a backup made ${result.created_at}${result.reindexed !== null ? `; reindexed ${result.reindexed} memories` : ''}`);
    });

  const dlq = program.command('dlq').description("dead-lettered tasks of the task families' queues");
  const apiOption = new Option('--api <url>', "call this server's admin routes (token in MEMORYSYNC_ADMIN_TOKEN) instead of the queues directly");
  dlq
    .command('list')
    .description('dead letters per task family')
    .addOption(apiOption)
    .addOption(json)
    .action(async (opts: { api?: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const result = await deadLetterCall<DeadLetterCounts>(opts, 'admin/dead-letters', 'GET', async (app) => {
        const counts = await app.admin.deadLetterCounts();
        await app.admin.record(cliActor(), { eventType: 'admin.dead_letters_listed', action: 'read', payload: { total: counts.total } });
        return counts;
      });
      const width = Math.max(...result.families.map((f) => f.family.length));
      print(out, result, [`${result.total} dead letters (${result.queue} queue)`, ...result.families.map((f) => `  ${f.family.padEnd(width)}  ${f.messages}`)].join('\n'));
    });
  dlq
    .command('redrive')
    .description("move a family's dead letters back to its queue (task ids are kept: a task that already ran is not run again)")
    .addArgument(new Argument('<family>', 'task family').choices(TASK_FAMILIES))
    .option('--limit <n>', `at most this many (1–${REDRIVE_MAX_LIMIT}, default 100)`)
    .addOption(apiOption)
    .addOption(json)
    .action(async (family: TaskFamily, opts: { limit?: string; api?: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const limit = opts.limit === undefined ? undefined : Number(opts.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > REDRIVE_MAX_LIMIT)) throw new CliError(`--limit must be an integer from 1 to ${REDRIVE_MAX_LIMIT}`);
      const path = `admin/dead-letters/${family}/redrive${limit !== undefined ? `?limit=${limit}` : ''}`;
      const result = await deadLetterCall<RedriveResult>(opts, path, 'POST', (app) => app.admin.redriveDeadLetters(cliActor(), { family, limit }));
      const r = result.results[0];
      print(out, result, `Re-drove ${result.redriven} dead letters of ${family}${r ? `; ${r.remaining} remain in its DLQ` : ''}`);
    });

  program
    .command('export-user')
    .description("export one end user's memories (decrypted) as JSON")
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--user <end user id>', 'the end user id clients send as X-End-User-ID')
    .option('--out <file>', 'write the export to this file (mode 0600) instead of stdout')
    .addOption(json)
    .action(async (opts: { tenant: string; user: string; out?: string; json?: boolean }) => {
      const out = { json: !!opts.json };
      const document = await withApp(async (app) => {
        await tenantOrThrow(app, opts.tenant);
        const userId = await endUserOrThrow(app, opts.tenant, opts.user);
        const memories = await app.memories.exportAll({ tenantId: opts.tenant, projectId: null, principal: operator(opts.tenant), userId, endUserExternalId: opts.user, environment: 'production' });
        await app.admin.record(cliActor(), { eventType: 'admin.export_user', action: 'export', tenantId: opts.tenant, payload: { end_user_id: opts.user, count: memories.length } });
        return { tenant_id: opts.tenant, end_user_id: opts.user, exported_at: app.clock.now().toISOString(), count: memories.length, memories: memories.map(toMemoryResponse) };
      });
      if (!opts.out) {
        process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
        return;
      }
      writeFileSync(opts.out, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
      print(out, { tenant_id: document.tenant_id, end_user_id: document.end_user_id, count: document.count, file: opts.out }, `Exported ${document.count} memories of ${opts.user} (tenant ${opts.tenant}) to ${opts.out}`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string; exitCode?: number };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 1; // commander already printed usage or help
    const wantsJson = argv.includes('--json');
    const message = err instanceof CliError ? e.message : `failed: ${e.message}`;
    process.stderr.write(wantsJson ? `${JSON.stringify({ error: message })}\n` : `memorysync: ${message}\n`);
    return 1;
  }
}
