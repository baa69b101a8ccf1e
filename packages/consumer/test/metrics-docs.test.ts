/**
 * docs/operations.md lists every metric of both processes, with its type,
 * labels and process, and no metric that neither registry has.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { Metrics as ProducerMetrics } from '../../producer/src/metrics.js';
import { Metrics as ConsumerMetrics } from '../src/metrics.js';

interface Row {
  readonly type: string;
  readonly labels: string[];
  readonly process: string;
}

const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('### Alerts'));
const documented = new Map<string, Row>(
  [...section.matchAll(/^\|\s*`(postoffice_[a-z_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|/gm)].map((m) => [
    m[1]!,
    {
      type: m[2]!.trim(),
      labels: [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!),
      process: m[4]!.trim(),
    },
  ]),
);

/** Every postoffice_* metric of a registry, with its type and label names. */
async function registered(registry: Registry): Promise<Map<string, { type: string; labels: string[] }>> {
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const m of await registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('postoffice_')) continue;
    const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
    out.set(m.name, { type: String(m.type), labels: [...(metric.labelNames ?? [])] });
  }
  return out;
}

describe('the metrics table of docs/operations.md', () => {
  it('lists every metric of the producer and the consumer, with its type, labels and process, and no other', async () => {
    const producer = await registered(new ProducerMetrics({ defaultMetrics: false }).registry);
    const consumer = await registered(new ConsumerMetrics({ defaultMetrics: false }).registry);
    const names = new Set([...producer.keys(), ...consumer.keys()]);
    expect([...documented.keys()].sort()).to.deep.equal([...names].sort());
    for (const name of names) {
      const row = documented.get(name)!;
      const p = producer.get(name);
      const c = consumer.get(name);
      expect(row.process, name).to.equal(p && c ? 'both' : p ? 'producer' : 'consumer');
      for (const m of [p, c]) {
        if (!m) continue;
        expect(row.type, name).to.equal(m.type);
        expect(row.labels, name).to.deep.equal(m.labels);
      }
    }
  });

  it('has a topic label on every metric with a publisher label', () => {
    for (const [name, row] of documented) {
      if (row.labels.includes('publisher')) expect(row.labels, name).to.include('topic');
    }
  });
});
