'use strict';
// Node `ws` client driven by test_interop_node.py.
//   node node_ws_client.js URL echo text|binary SIZE [FRAGMENTS]
//   node node_ws_client.js URL pipeline COUNT
//   node node_ws_client.js URL ping
//   node node_ws_client.js URL close CODE [REASON]
// Prints one line "OK <details>" and exits 0 on success; prints the failure and exits 1.
const WebSocket = require('ws');
const crypto = require('crypto');

const [url, scenario, ...args] = process.argv.slice(2);
const TIMEOUT_MS = 120000;

function fail(message) {
  console.error('FAIL ' + message);
  process.exit(1);
}
setTimeout(() => fail('timed out in scenario ' + scenario), TIMEOUT_MS).unref();

function makeText(n) {
  // 1+1+1+2+3+4 = 12 bytes per unit; cut to exactly n bytes on a character boundary.
  const unit = 'abc\u00b5\u20ac\u{1f600}';
  const text = unit.repeat(Math.floor(n / 12)) + 'x'.repeat(n % 12);
  if (Buffer.byteLength(text) !== n) fail('bad text size');
  return text;
}

function makeBinary(n) {
  const seed = crypto.createHash('sha256').update('seed').digest();
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 32) seed.copy(out, i, 0, Math.min(32, n - i));
  return out;
}

const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, perMessageDeflate: false });
ws.on('error', (err) => fail('error event: ' + err.message));
let expectedClose = null;
ws.on('close', (code, reason) => {
  if (expectedClose === null) fail('unexpected close ' + code + ' ' + reason);
  if (code !== expectedClose.code) fail('close code ' + code + ', expected ' + expectedClose.code);
  console.log('OK close ' + code + ' ' + reason.toString());
  process.exit(0);
});

function finish(details) {
  expectedClose = { code: 1000 };
  ws.close(1000, details.slice(0, 100));
}

ws.on('open', () => {
  if (ws.extensions !== '') fail('extensions negotiated: ' + ws.extensions);
  if (scenario === 'echo') {
    const kind = args[0];
    const size = Number(args[1]);
    const pieces = Number(args[2] || 1);
    const binary = kind === 'binary';
    const message = binary ? makeBinary(size) : makeText(size);
    ws.once('message', (data, isBinary) => {
      if (isBinary !== binary) fail('isBinary ' + isBinary);
      const expected = binary ? message : Buffer.from(message);
      if (!Buffer.isBuffer(data) || !data.equals(expected)) fail('echo differs: got ' + data.length + ' bytes, expected ' + expected.length);
      finish('echo ' + kind + ' ' + size);
    });
    if (pieces <= 1) {
      ws.send(message, { binary });
    } else if (binary) {
      for (let i = 0; i < pieces; i++) {
        ws.send(message.subarray(Math.floor(i * size / pieces), Math.floor((i + 1) * size / pieces)),
                { binary: true, fin: i === pieces - 1 });
      }
    } else {
      const chars = Array.from(message);  // split on code points so every piece is a string
      for (let i = 0; i < pieces; i++) {
        const piece = chars.slice(Math.floor(i * chars.length / pieces), Math.floor((i + 1) * chars.length / pieces)).join('');
        ws.send(piece, { binary: false, fin: i === pieces - 1 });
      }
    }
  } else if (scenario === 'pipeline') {
    const count = Number(args[0]);
    let received = 0;
    ws.on('message', (data, isBinary) => {
      const i = received++;
      const expected = i % 2 ? 'message ' + i : 'binary ' + i;
      if (isBinary !== (i % 2 === 0) || data.toString() !== expected) fail('message ' + i + ' out of order or wrong: ' + data.toString());
      if (received === count) finish('pipeline ' + count);
    });
    for (let i = 0; i < count; i++) {
      if (i % 2) ws.send('message ' + i);
      else ws.send(Buffer.from('binary ' + i), { binary: true });
    }
  } else if (scenario === 'ping') {
    const payloads = [Buffer.alloc(0), Buffer.from('node ping'), Buffer.alloc(125, 7)];
    let next = 0;
    ws.on('pong', (data) => {
      if (!data.equals(payloads[next])) fail('pong payload differs for ping ' + next);
      next++;
      if (next === payloads.length) finish('ping');
    });
    for (const p of payloads) ws.ping(p);
  } else if (scenario === 'close') {
    const code = Number(args[0]);
    expectedClose = { code };
    ws.close(code, args[1] || '');
  } else {
    fail('unknown scenario ' + scenario);
  }
});
