import { describe, expect, it } from 'vitest';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { bodyOf, MAX_JSON_DEPTH } from '#shared/http/request-body.ts';
import type { ApiRequest } from '#shared/http/types.ts';
import { apiEvent } from '../../support/events.ts';
import { bodyJson, handlerWith, silentLogger } from './middy-harness.ts';

const LIMIT = 1024;

/** A route that answers with the body it read (`{"body": null}` for none). */
const api = handlerWith([errorHandler({ logger: silentLogger() })], (request) => ({
  statusCode: 200,
  body: JSON.stringify({ body: bodyOf(request, LIMIT) ?? null }),
}));

const post = (body: string | undefined, headers: Record<string, string> = { 'Content-Type': 'application/json' }, isBase64Encoded = false) =>
  api(apiEvent({ method: 'POST', path: '/memory/add', headers, body, isBase64Encoded }));

const nested = (levels: number) => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);

describe('request body', () => {
  it('parses a JSON body', async () => {
    const res = await post('{"text":"Pick up the dry cleaning on Friday","tags":["errands"]}');
    expect(bodyJson(res).body).toEqual({ text: 'Pick up the dry cleaning on Friday', tags: ['errands'] });
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over the limit, counted in bytes', async () => {
    const atLimit = JSON.stringify({ text: 'x'.repeat(LIMIT - 11) });
    expect(Buffer.byteLength(atLimit)).toBe(LIMIT);
    expect((await post(atLimit)).statusCode).toBe(200);
    const over = await post(JSON.stringify({ text: 'x'.repeat(LIMIT - 10) }));
    expect(over.statusCode).toBe(413);
    expect(bodyJson(over).error.code).toBe('PAYLOAD_TOO_LARGE');
    const multibyte = JSON.stringify({ text: 'é'.repeat(600) });
    expect(multibyte.length).toBeLessThan(LIMIT);
    expect((await post(multibyte)).statusCode).toBe(413);
  });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE for a body that is not JSON by content type', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await post('text=hello', { 'Content-Type': type });
      expect(res.statusCode).toBe(415);
      expect(bodyJson(res).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('accepts JSON variants, text/plain and a missing content type', async () => {
    for (const headers of <Record<string, string>[]>[{ 'Content-Type': 'application/json; charset=utf-8' }, { 'content-type': 'application/merge-patch+json' }, { 'Content-Type': 'text/plain' }, {}]) {
      expect((await post('{"text":"hello world"}', headers)).statusCode).toBe(200);
    }
  });

  it('answers 400 INVALID_JSON for malformed JSON', async () => {
    for (const raw of ['{"text": "unterminated', "{'text': 'single quotes'}", '{"a":1,}']) {
      const res = await post(raw);
      expect(res.statusCode).toBe(400);
      expect(bodyJson(res).error.code).toBe('INVALID_JSON');
    }
  });

  it(`answers 422 for JSON nested deeper than ${MAX_JSON_DEPTH} levels and accepts exactly ${MAX_JSON_DEPTH}`, async () => {
    expect((await post(nested(MAX_JSON_DEPTH))).statusCode).toBe(200);
    const deep = await post(nested(MAX_JSON_DEPTH + 1));
    expect(deep.statusCode).toBe(422);
    expect(bodyJson(deep).error).toMatchObject({ code: 'VALIDATION_ERROR', details: [] });
    const arrays = await post('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1));
    expect(arrays.statusCode).toBe(422);
  });

  it('rejects absurd nesting with 422 instead of overflowing the stack', async () => {
    const huge = '['.repeat(100_000) + ']'.repeat(100_000);
    const hugeApi = handlerWith([errorHandler({ logger: silentLogger() })], (request) => ({ statusCode: 200, body: JSON.stringify({ body: bodyOf(request, 1_000_000) ?? null }) }));
    expect((await hugeApi(apiEvent({ method: 'POST', path: '/memory/add', body: huge }))).statusCode).toBe(422);
  });

  it('decodes a base64-encoded body, applying the limit to the decoded bytes', async () => {
    const json = '{"text":"Übermorgen: Zahnarzt um 9 Uhr"}';
    const res = await post(Buffer.from(json).toString('base64'), { 'Content-Type': 'application/json' }, true);
    expect(bodyJson(res).body).toEqual({ text: 'Übermorgen: Zahnarzt um 9 Uhr' });
    const big = Buffer.from(JSON.stringify({ text: 'y'.repeat(LIMIT) })).toString('base64');
    expect((await post(big, { 'Content-Type': 'application/json' }, true)).statusCode).toBe(413);
  });

  it('treats an absent, empty or blank body as undefined whatever the content type', async () => {
    expect(bodyJson(await post(undefined)).body).toBeNull();
    expect(bodyJson(await post('')).body).toBeNull();
    expect(bodyJson(await post('  \n ', { 'Content-Type': 'application/xml' })).body).toBeNull();
  });

  it('parses once per request: later readers get the same object even if the event changes', async () => {
    const seen: unknown[] = [];
    const memo = handlerWith(
      [{ before: (request) => { seen.push(bodyOf(request as ApiRequest, LIMIT)); } }, errorHandler({ logger: silentLogger() })],
      (request) => {
        request.event.body = '{"text":"replaced after the first read"}';
        seen.push(bodyOf(request, LIMIT));
        return { statusCode: 200, body: '{}' };
      },
    );
    await memo(apiEvent({ method: 'POST', path: '/memory/add', body: { text: 'first read wins' } }));
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(seen[0]);
    expect(seen[0]).toEqual({ text: 'first read wins' });
  });

  it('memoises an empty body as undefined too', async () => {
    const seen: unknown[] = [];
    const memo = handlerWith([errorHandler({ logger: silentLogger() })], (request) => {
      seen.push(bodyOf(request, LIMIT));
      request.event.body = '{"late":true}';
      seen.push(bodyOf(request, LIMIT));
      return { statusCode: 200, body: '{}' };
    });
    await memo(apiEvent({ method: 'GET', path: '/memory/export' }));
    expect(seen).toEqual([undefined, undefined]);
  });
});
