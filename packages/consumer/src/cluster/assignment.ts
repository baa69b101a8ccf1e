/**
 * Which live node should hold each publisher slot: rendezvous (highest
 * random weight) hashing with bounded loads. Every node computes the same
 * answer from the same inputs (the publishers it loaded, the live nodes in
 * the heartbeat set), so no coordinator is needed; leases settle the short
 * moments when two nodes' views differ.
 *
 * Plain rendezvous hashing spreads slots only statistically (30 slots over 3
 * nodes often land 13/9/8). Bounding each node to its fair share
 * (`floor(S/N)`, plus one for the first `S mod N` nodes by id) keeps every
 * node within one slot of any other, while each slot still goes to the
 * highest-ranked node that has room, so a node joining or leaving moves few
 * slots besides its own share.
 */

/** A slot's name: `<publisher id>/<slot index>`. */
export function slotName(publisherId: string, slot: number): string {
  return `${publisherId}/${slot}`;
}

/** 32-bit FNV-1a, then a finalizer so that similar strings score far apart. */
function weight(node: string, slot: string): number {
  let h = 0x811c9dc5;
  const s = `${node}\n${slot}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Slot name -> node id, for every slot, over the given live nodes (none when there is no node). */
export function assignSlots(slots: readonly string[], nodes: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const sortedNodes = [...new Set(nodes)].sort();
  if (sortedNodes.length === 0) return out;
  if (sortedNodes.length === 1) {
    const only = sortedNodes[0] as string;
    for (const slot of slots) out.set(slot, only);
    return out;
  }
  const sortedSlots = [...new Set(slots)].sort();
  const base = Math.floor(sortedSlots.length / sortedNodes.length);
  const extra = sortedSlots.length % sortedNodes.length;
  const room = new Map(sortedNodes.map((n, i) => [n, base + (i < extra ? 1 : 0)]));
  for (const slot of sortedSlots) {
    let best: string | undefined;
    let bestWeight = -1;
    for (const node of sortedNodes) {
      if ((room.get(node) ?? 0) <= 0) continue;
      const w = weight(node, slot);
      if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
        best = node;
        bestWeight = w;
      }
    }
    if (best === undefined) continue;
    room.set(best, (room.get(best) ?? 0) - 1);
    out.set(slot, best);
  }
  return out;
}
