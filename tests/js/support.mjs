// What the Node tests of pylon.js share: the server that tests/integration/test_pylon_js.py started
// (its address, HMAC secret and backend API key come in the environment), HS256 connection tokens
// signed with Node's crypto, the backend API, a fake clock, and waiting for events.
import {createHmac} from "node:crypto";
import {createRequire} from "node:module";

import {Pylon} from "../../clients/js/pylon.js";

// ES modules ignore NODE_PATH; require() honours it (Debian's node-ws is in /usr/share/nodejs).
export const WebSocket = createRequire(import.meta.url)("ws");

const address = process.env.PYLON_ADDRESS;
if (!address) throw new Error("PYLON_ADDRESS is not set: run through tests/integration/test_pylon_js.py");
export const wsUrl = `ws://${address}/ws`;
export const httpUrl = `http://${address}`;
export const TIMEOUT = 20000;

let nextUser = 0;
// A user of its own for each test, so that a backend disconnect hits only that test's clients.
export function newUser() {
  return `js-${process.pid}-${++nextUser}`;
}

const base64url = (value) => Buffer.from(value).toString("base64url");

// An HS256 connection token for `sub`, expiring in `lifetime` seconds, granting every topic;
// `info`: its pylon.info, when given.
export function token(sub, {lifetime = 600, subscribe = ["*"], publish = ["*"], info} = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({alg: "HS256", typ: "JWT"}));
  const grants = info === undefined ? {subscribe, publish} : {subscribe, publish, info};
  const payload = base64url(JSON.stringify({sub, iat: now, exp: now + lifetime, pylon: grants}));
  const signature = createHmac("sha256", process.env.PYLON_SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

export function client(options = {}) {
  return new Pylon(wsUrl, {WebSocket, ...options});
}

// POST /api/<path> with the backend key; resolves with {status, body}.
export async function backend(path, body) {
  const response = await fetch(`${httpUrl}/api/${path}`, {
    method: "POST",
    headers: {"Authorization": `Bearer ${process.env.PYLON_API_KEY}`, "Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  return {status: response.status, body: await response.json()};
}

// A counter of the server's /metrics, by its full series name (`name{label="value"}`), 0 if absent.
export async function metric(series) {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.split(" ")[1]) : 0;
}

// Resolves with the next `event` of `emitter` for which `accept` holds.
export function next(emitter, event, accept = () => true, timeout = TIMEOUT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeout);
    const listener = (value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(value);
    };
    emitter.on(event, listener);
  });
}

// Time that moves only when a test says so. Timers are kept in `timers` (delay as asked, due
// time) so a test can read the delays the client chose.
export class FakeClock {
  constructor(start = 1_000_000) {
    this.time = start;
    this.timers = new Map();
    this.scheduled = [];  // every delay asked for, in order: [ms, ...]
    this.nextHandle = 1;
  }
  now() {
    return this.time;
  }
  setTimeout(callback, ms) {
    const handle = this.nextHandle++;
    this.timers.set(handle, {callback, due: this.time + ms, ms});
    this.scheduled.push(ms);
    return handle;
  }
  clearTimeout(handle) {
    this.timers.delete(handle);
  }
  // Runs every timer due by now + ms, in due order, moving the time to each.
  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let first;
      for (const [handle, timer] of this.timers)
        if (timer.due <= end && (!first || timer.due < first[1].due)) first = [handle, timer];
      if (!first) break;
      this.timers.delete(first[0]);
      this.time = first[1].due;
      first[1].callback();
    }
    this.time = end;
  }
}
