'use strict';
// Node `ws` pub/sub client driven by test_pubsub_interop.py (docs/protocol.md).
//   node node_pubsub_client.js URL subscribe TOPIC COUNT
//     subscribes with id "node-1", prints "READY" after the ack, then expects COUNT messages
//     on TOPIC whose data is {"seq":0..COUNT-1,...} in order, and the exact envelope bytes.
//   node node_pubsub_client.js URL publish TOPIC COUNT
//     publishes {"seq":i,"from":"node"} with ids 0..COUNT-1 and expects every ack in order.
// Prints "OK <details>" and exits 0 on success; prints the failure and exits 1.
const WebSocket = require('ws');

const [url, scenario, topic, countText] = process.argv.slice(2);
const count = Number(countText);
const TIMEOUT_MS = 120000;

function fail(message) {
  console.error('FAIL ' + message);
  process.exit(1);
}
setTimeout(() => fail('timed out in scenario ' + scenario), TIMEOUT_MS).unref();

const ws = new WebSocket(url, { perMessageDeflate: false });
ws.on('error', (err) => fail('error event: ' + err.message));
let closing = false;
ws.on('close', (code, reason) => {
  if (!closing) fail('unexpected close ' + code + ' ' + reason);
  process.exit(0);
});

function finish(details) {
  closing = true;
  console.log('OK ' + details);
  ws.close(1000);
}

function parse(data, isBinary) {
  if (isBinary) fail('unexpected binary message');
  try {
    return JSON.parse(data.toString());
  } catch (err) {
    fail('not JSON: ' + data.toString());
  }
}

ws.on('open', () => {
  if (scenario === 'subscribe') {
    let acked = false;
    let received = 0;
    ws.on('message', (data, isBinary) => {
      const value = parse(data, isBinary);
      if (!acked) {
        if (value.type !== 'ack' || value.id !== 'node-1') fail('expected the ack of node-1, got ' + data);
        acked = true;
        console.log('READY');
        return;
      }
      if (value.type !== 'message' || value.topic !== topic) fail('expected a message on ' + topic + ', got ' + data);
      if (value.data.seq !== received) fail('expected seq ' + received + ', got ' + data);
      const expected = '{"type":"message","topic":' + JSON.stringify(topic) + ',"data":' + JSON.stringify(value.data) + '}';
      if (data.toString() !== expected) fail('envelope bytes differ: ' + data + ' vs ' + expected);
      received++;
      if (received === count) finish('received ' + count);
    });
    ws.send(JSON.stringify({ type: 'subscribe', topics: [topic], id: 'node-1' }));
  } else if (scenario === 'publish') {
    let acks = 0;
    ws.on('message', (data, isBinary) => {
      const value = parse(data, isBinary);
      if (value.type !== 'ack' || value.id !== acks) fail('expected the ack of ' + acks + ', got ' + data);
      acks++;
      if (acks === count) finish('published ' + count);
    });
    for (let i = 0; i < count; i++) {
      ws.send(JSON.stringify({ type: 'publish', topic, data: { seq: i, from: 'node' }, id: i }));
    }
  } else {
    fail('unknown scenario ' + scenario);
  }
});
