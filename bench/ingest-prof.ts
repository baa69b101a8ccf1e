import { cannon } from './lib/load.js';
import { ATTRIBUTES, TOPIC, payload } from './lib/payload.js';
import { World } from './lib/world.js';
const world = await World.start();
const producer = await world.startProducer();
await world.createTopic(TOPIC);
const body = JSON.stringify({ topic: TOPIC, payload: payload(1), attributes: ATTRIBUTES });
const url = `${producer.url}/api/messages`;
await cannon({ url, body, connections: 32, seconds: 2 });


const load = await cannon({ url, body, connections: 32, seconds: Number(process.env.SECS ?? 8) });
console.log('req/s', load.reqPerSec, 'p99', load.p99Ms, 'non2xx', load.non2xx);
await world.close();
