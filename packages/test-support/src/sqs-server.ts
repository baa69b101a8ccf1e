/**
 * Test support: an Amazon SQS endpoint on 127.0.0.1 that speaks the JSON
 * protocol the current AWS SDK uses (`POST /` with
 * `X-Amz-Target: AmazonSQS.<Action>`, `application/x-amz-json-1.0`), for
 * the few actions a source needs: ReceiveMessage (with long polling and a
 * visibility timeout), DeleteMessage, DeleteMessageBatch,
 * GetQueueAttributes, and SendMessage. Queues are made by the test. It can
 * fail the next calls of an action, and hold deletions unanswered (to kill
 * a node between its write and its deletion).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';

export interface SqsMessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: string;
}

interface Stored {
  readonly id: string;
  readonly body: string;
  readonly attributes: Record<string, SqsMessageAttribute>;
  /** Time (ms) it is visible again; 0 when visible. */
  invisibleUntil: number;
  receipt: string;
  receives: number;
}

export interface FakeSqs {
  /** `http://127.0.0.1:<port>`: the SDK's endpoint. */
  readonly endpoint: string;
  /** Makes a queue; returns its URL. */
  createQueue(name: string, visibilityTimeoutSeconds?: number): string;
  /** Adds a message to a queue; returns its MessageId. */
  send(queueUrl: string, body: string, attributes?: Record<string, SqsMessageAttribute>): string;
  /** Messages still in the queue (deleted ones gone), by id. */
  remaining(queueUrl: string): string[];
  /** How many times each message was received, by id. */
  receives(queueUrl: string): Record<string, number>;
  /** Actions called, in order. */
  readonly calls: string[];
  /** Fails the next `times` calls of `action` with an InternalError (500). */
  failNext(action: string, times: number): void;
  /** Deletions from now on are never answered (the connection stays open) until `releaseDeletes`. */
  holdDeletes(): void;
  releaseDeletes(): void;
  /** Deletions waiting unanswered. */
  heldDeletes(): number;
  close(): Promise<void>;
}

const md5 = (text: string): string => createHash('md5').update(text, 'utf8').digest('hex');

export async function startSqsServer(): Promise<FakeSqs> {
  const queues = new Map<string, { visibility: number; messages: Stored[] }>();
  const calls: string[] = [];
  const failures = new Map<string, number>();
  const waiters = new Set<() => void>();
  const held = new Set<ServerResponse>();
  let holding = false;
  let endpoint = '';

  const wake = (): void => {
    for (const w of [...waiters]) w();
  };

  function queueOf(url: unknown): { visibility: number; messages: Stored[] } | undefined {
    return typeof url === 'string' ? queues.get(url) : undefined;
  }

  function reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify(body));
  }

  function error(res: ServerResponse, status: number, type: string, message: string): void {
    res.setHeader('x-amzn-query-error', `${type};Sender`);
    reply(res, status, { __type: `com.amazonaws.sqs#${type}`, message });
  }

  function visible(q: { messages: Stored[] }, now: number): Stored[] {
    return q.messages.filter((m) => m.invisibleUntil <= now);
  }

  function receive(res: ServerResponse, input: Record<string, unknown>): void {
    const q = queueOf(input.QueueUrl);
    if (!q) return error(res, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
    const max = Number(input.MaxNumberOfMessages ?? 1);
    const waitMs = Number(input.WaitTimeSeconds ?? 0) * 1000;
    const deadline = Date.now() + waitMs;
    let done = false;
    const attempt = (): void => {
      if (done) return;
      const now = Date.now();
      const ready = visible(q, now).slice(0, max);
      if (ready.length === 0 && now < deadline) return;
      done = true;
      waiters.delete(attempt);
      clearInterval(timer);
      const out = ready.map((m) => {
        m.invisibleUntil = now + q.visibility * 1000;
        m.receipt = randomUUID();
        m.receives++;
        return {
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          MD5OfBody: md5(m.body),
          Body: m.body,
          ...(Object.keys(m.attributes).length > 0 ? { MessageAttributes: m.attributes } : {}),
        };
      });
      reply(res, 200, out.length > 0 ? { Messages: out } : {});
    };
    // Messages whose visibility timeout ends are seen by the interval; new ones wake the waiters.
    const timer = setInterval(attempt, 50);
    waiters.add(attempt);
    // The response closes early when the client gives up (an aborted long poll).
    res.on('close', () => {
      if (done) return;
      done = true;
      waiters.delete(attempt);
      clearInterval(timer);
    });
    attempt();
  }

  function remove(q: { messages: Stored[] }, receipt: unknown): boolean {
    const i = q.messages.findIndex((m) => m.receipt === receipt);
    if (i === -1) return false;
    q.messages.splice(i, 1);
    return true;
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
      calls.push(action);
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return error(res, 400, 'InvalidParameterValue', 'bad JSON');
      }
      const failing = failures.get(action) ?? 0;
      if (failing > 0) {
        failures.set(action, failing - 1);
        return error(res, 500, 'InternalError', 'failing as the test asked');
      }
      const q = queueOf(input.QueueUrl);
      switch (action) {
        case 'ReceiveMessage':
          return receive(res, input);
        case 'DeleteMessage':
        case 'DeleteMessageBatch': {
          if (holding) {
            held.add(res);
            return;
          }
          if (!q) return error(res, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
          if (action === 'DeleteMessage') {
            remove(q, input.ReceiptHandle);
            return reply(res, 200, {});
          }
          const entries = (input.Entries ?? []) as { Id: string; ReceiptHandle: string }[];
          const Successful: { Id: string }[] = [];
          const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
          for (const e of entries) {
            if (remove(q, e.ReceiptHandle)) Successful.push({ Id: e.Id });
            else
              Failed.push({
                Id: e.Id,
                SenderFault: true,
                Code: 'ReceiptHandleIsInvalid',
                Message: 'The receipt handle has expired.',
              });
          }
          return reply(res, 200, { Successful, Failed });
        }
        case 'GetQueueAttributes': {
          if (!q) return error(res, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
          const now = Date.now();
          return reply(res, 200, {
            Attributes: {
              ApproximateNumberOfMessages: String(visible(q, now).length),
              ApproximateNumberOfMessagesNotVisible: String(q.messages.length - visible(q, now).length),
            },
          });
        }
        case 'SendMessage': {
          if (!q) return error(res, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
          const body = typeof input.MessageBody === 'string' ? input.MessageBody : '';
          const id = api.send(input.QueueUrl as string, body);
          return reply(res, 200, { MessageId: id, MD5OfMessageBody: md5(body) });
        }
        default:
          return error(res, 400, 'InvalidAction', `unsupported action ${action}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const api: FakeSqs = {
    endpoint,
    createQueue(name, visibilityTimeoutSeconds = 30) {
      const url = `${endpoint}/000000000000/${name}`;
      queues.set(url, { visibility: visibilityTimeoutSeconds, messages: [] });
      return url;
    },
    send(queueUrl, body, attributes = {}) {
      const q = queues.get(queueUrl);
      if (!q) throw new Error(`no queue ${queueUrl}`);
      const id = randomUUID();
      q.messages.push({ id, body, attributes, invisibleUntil: 0, receipt: '', receives: 0 });
      wake();
      return id;
    },
    remaining: (queueUrl) => (queues.get(queueUrl)?.messages ?? []).map((m) => m.id),
    receives: (queueUrl) => Object.fromEntries((queues.get(queueUrl)?.messages ?? []).map((m) => [m.id, m.receives])),
    calls,
    failNext(action, times) {
      failures.set(action, times);
    },
    holdDeletes() {
      holding = true;
    },
    releaseDeletes() {
      holding = false;
      for (const res of held) res.destroy();
      held.clear();
    },
    heldDeletes: () => held.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}
