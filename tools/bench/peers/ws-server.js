'use strict';
// Peer server for wsfleet-bench: node `ws` 8.x with the small topic protocol of
// PEER_PROTOCOL.md. It does exactly what the protocol needs and nothing more, because
// every extra step here would be counted as this peer's cost.
//
// Usage: node ws-server.js [--port P]   (prints "listening <port>" once ready)

const { WebSocketServer } = require('ws');
const { portArg, validTopic } = require('./args');

const topics = new Map(); // topic -> Set of sockets

function subscribe(ws, topic) {
  let subs = topics.get(topic);
  if (!subs) {
    subs = new Set();
    topics.set(topic, subs);
  }
  subs.add(ws);
  ws.topics.add(topic);
}

function unsubscribe(ws, topic) {
  const subs = topics.get(topic);
  if (subs) {
    subs.delete(ws);
    // Drop empty topics so that a long run with changing topics does not grow forever.
    if (subs.size === 0) topics.delete(topic);
  }
  ws.topics.delete(topic);
}

function onMessage(ws, raw, isBinary) {
  if (isBinary) return;
  let m;
  try {
    m = JSON.parse(raw);
  } catch {
    return;
  }
  if (m === null || typeof m !== 'object' || !validTopic(m.topic)) return;
  if (m.op === 'sub') {
    subscribe(ws, m.topic);
    ws.send('{"op":"suback","topic":' + JSON.stringify(m.topic) + '}');
  } else if (m.op === 'unsub') {
    unsubscribe(ws, m.topic);
  } else if (m.op === 'pub' && typeof m.data === 'string') {
    const subs = topics.get(m.topic);
    if (!subs) return;
    // Built once per publish, the same string goes to every subscriber.
    const frame =
        '{"op":"msg","topic":' + JSON.stringify(m.topic) + ',"data":' + JSON.stringify(m.data) + '}';
    for (const sub of subs) sub.send(frame);
  }
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: portArg(process.argv),
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.topics = new Set();
  ws.on('message', (raw, isBinary) => onMessage(ws, raw, isBinary));
  ws.on('close', () => {
    for (const t of ws.topics) unsubscribe(ws, t);
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});
wss.on('error', (err) => {
  console.error(`ws-server: ${err.message}`);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
