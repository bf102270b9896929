import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** the status the receiver answered with */
  answered: number;
}

export interface HttpReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** the status of the next answers, in order; when empty, `fallback` */
  script: number[];
  fallback: number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records what it receives and answers with scripted statuses. */
export async function startReceiver(fallback = 200): Promise<HttpReceiver> {
  const receiver: HttpReceiver = { url: '', port: 0, requests: [], script: [], fallback, close: async () => {} };
  const server: Server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const status = receiver.script.shift() ?? receiver.fallback;
    receiver.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, answered: status });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return receiver;
}
