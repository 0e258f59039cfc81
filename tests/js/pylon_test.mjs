// pylon.js (clients/js/pylon.js) against a real `pylon serve` (started by
// tests/integration/test_pylon_js.py) and, for what pylon cannot be made to do on demand (stay
// silent, refuse an upgrade with Retry-After), a real Node HTTP/WebSocket peer on 127.0.0.1.
import assert from "node:assert/strict";
import {createServer} from "node:http";
import {describe, test} from "node:test";

import {backoffDelay, closeAction, Pylon, tokenExpiry} from "../../clients/js/pylon.js";
import {backend, client, FakeClock, metric, newUser, next, token, WebSocket} from "./support.mjs";

// A Node HTTP server on 127.0.0.1 for the peers below; resolves with {server, port}.
function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({server, port: server.address().port})));
}

// Lets the event loop run until `condition()` holds (for state the client changes between events).
async function until(condition, what) {
  const deadline = Date.now() + 20000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("subscribe, publish, acks", () => {
  test("a publication reaches the subscriber; publish resolves on the ack", async () => {
    const user = newUser();
    const subscriber = client({token: token(user)}).connect();
    const publisher = client({token: token(user)}).connect();  // publishes while still connecting
    const topic = `js:${user}`;
    const subscription = subscriber.subscribe(topic);
    const subscribed = await next(subscription, "subscribed");
    assert.equal(subscribed.recovered, undefined);
    const received = next(subscription, "publication");
    const ack = await publisher.publish(topic, {text: "hi", n: [1, 2.5]});
    assert.equal(ack.type, "ack");
    assert.deepEqual((await received).data, {text: "hi", n: [1, 2.5]});
    // The subscription's own publish, and the subscriber gets its own message.
    const own = next(subscription, "publication");
    await subscription.publish("from the subscription");
    assert.equal((await own).data, "from the subscription");
    subscriber.disconnect();
    publisher.disconnect();
    assert.equal(subscriber.state, "disconnected");
  });

  test("on a topic with history, acks and publications carry the offset", async () => {
    const user = newUser();
    const c = client({token: token(user)}).connect();
    const subscription = c.subscribe(`chat:${user}`);
    const {position} = await next(subscription, "subscribed");
    assert.equal(position.offset, 0);
    assert.equal(typeof position.epoch, "string");
    const received = next(subscription, "publication");
    assert.equal((await c.publish(`chat:${user}`, 1)).offset, 1);
    assert.deepEqual(await received, {topic: `chat:${user}`, data: 1, offset: 1});
    assert.equal(subscription.offset, 1);
    c.disconnect();
  });

  test("the server answers the application ping", async () => {
    const c = client({token: token(newUser())}).connect();
    assert.equal((await c.ping()).type, "ack");
    c.disconnect();
  });
});

describe("errors", () => {
  test("a refused publish rejects with the server's code", async () => {
    const c = client({token: token(newUser(), {publish: ["js:*"]})}).connect();
    await assert.rejects(c.publish("bad topic", 1), {name: "PylonError", code: "bad_topic"});
    await assert.rejects(c.publish("pylon/stats", 1), {code: "reserved_topic"});
    await assert.rejects(c.publish("other:x", 1), {code: "forbidden"});
    c.disconnect();
    await assert.rejects(c.publish("js:x", 1), {code: "disconnected"});
  });

  test("a refused subscribe is the subscription's error; it can be retried", async () => {
    const c = client({token: token(newUser(), {subscribe: ["js:*"]})}).connect();
    const subscription = c.subscribe("secret:x");
    const error = await next(subscription, "error");
    assert.equal(error.code, "forbidden");
    assert.equal(subscription.state, "unsubscribed");
    assert.equal(c.subscribe("secret:x"), subscription);  // the same object, listeners kept
    assert.equal((await next(subscription, "error")).code, "forbidden");
    c.disconnect();
  });

  test("a refused upgrade: Node's ws shows the 401; without getToken the client stops", async () => {
    const forged = token(newUser()).slice(0, -2) + "AA";
    const c = client({token: forged}).connect();
    const event = await next(c, "disconnected");
    assert.equal(event.status, 401);
    assert.equal(event.reconnect, false);
    assert.equal(c.state, "disconnected");
  });
});

describe("backoff", () => {
  test("full jitter: a random delay up to min(max, min * 2^attempt)", async () => {
    const {server, port} = await listen(createServer());
    server.close();  // nothing listens there any more: every attempt is refused
    const clock = new FakeClock();
    const draws = [0.5, 1, 0.25, 1, 1, 1, 0];
    const random = () => draws.shift();
    const c = new Pylon(`ws://127.0.0.1:${port}/ws`, {WebSocket, clock, random, minReconnectDelay: 100,
                                                      maxReconnectDelay: 1000});
    const delays = [];
    c.on("reconnecting", ({delay}) => delays.push(delay));
    c.connect();
    for (let attempt = 0; attempt < 7; attempt++) {
      await until(() => delays.length > attempt, `reconnect ${attempt}`);
      assert.equal(c.state, "connecting");
      clock.advance(delays[attempt]);
    }
    assert.deepEqual(delays, [50, 200, 100, 800, 1000, 1000, 0]);
    c.disconnect();
    assert.equal(clock.timers.size, 0);  // nothing left planned
  });

  test("the pure functions: bound, close codes, token expiry", () => {
    const options = {minReconnectDelay: 500, maxReconnectDelay: 20000};
    assert.equal(backoffDelay(0, options, () => 1), 500);
    assert.equal(backoffDelay(10, options, () => 1), 20000);
    for (const code of [1000, 1001, 1006, 1011, 1012, 1013, 4000, 4100, 4499]) assert.equal(closeAction(code), "retry", code);
    for (const code of [1002, 1003, 1007, 1008, 1009, 1010, 4002, 4500, 4999]) assert.equal(closeAction(code), "stop", code);
    assert.equal(closeAction(4001), "token");
    const exp = Math.floor(Date.now() / 1000) + 600;
    assert.ok(Math.abs(tokenExpiry(token("x")) - exp) <= 1);
    assert.equal(tokenExpiry("not a token"), undefined);
  });

  test("Retry-After of a 503 upgrade is waited for at least", async () => {
    const {server, port} = await listen(createServer());
    server.on("upgrade", (request, socket) => {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    const clock = new FakeClock();
    const c = new Pylon(`ws://127.0.0.1:${port}/ws`, {WebSocket, clock, random: () => 0.5});
    const reconnecting = next(c, "reconnecting");
    const disconnected = next(c, "disconnected");
    c.connect();
    assert.equal((await disconnected).status, 503);
    assert.equal((await reconnecting).delay, 7000);
    c.disconnect();
    server.close();
  });
});

describe("close codes", () => {
  test("4002 (the backend's default) is final; 4100 reconnects", async () => {
    const user = newUser();
    const c = client({token: token(user), minReconnectDelay: 50}).connect();
    await next(c, "connected");
    let disconnected = next(c, "disconnected");
    const reconnected = next(c, "connected");
    assert.equal((await backend("disconnect", {user, code: 4100, reason: "new permissions"})).status, 202);
    assert.deepEqual(await disconnected, {code: 4100, reason: "new permissions", status: undefined, reconnect: true});
    await reconnected;
    disconnected = next(c, "disconnected");
    await backend("disconnect", {user});
    const final = await disconnected;
    assert.equal(final.code, 4002);
    assert.equal(final.reconnect, false);
    assert.equal(c.state, "disconnected");
  });

  test("4001: the client gets a new token before it reconnects", async () => {
    const user = newUser();
    const tokens = [];
    // Its refreshes are refused (another user's token), so the server ends the grace with 4001.
    const getToken = () => {
      const fresh = token(tokens.length < 2 ? newUser() : user);
      tokens.push(fresh);
      return fresh;
    };
    const c = client({token: token(user, {lifetime: 2}), getToken, refreshMargin: 0, minReconnectDelay: 50});
    const errors = [];
    c.on("error", (error) => errors.push(error.code));
    const closed = next(c, "disconnected");
    c.connect();
    const event = await closed;
    assert.equal(event.code, 4001);
    assert.equal(event.reconnect, true);
    const asked = tokens.length;
    await next(c, "connected");
    assert.equal(tokens.length, asked + 1);  // a token fetched for the new connection
    assert.ok(errors.includes("forbidden"), errors);
    c.disconnect();
  });
});

describe("token refresh", () => {
  test("before expiry, over the open connection", async () => {
    const user = newUser();
    const before = await metric('pylon_auth_refreshes_total{result="ok"}');
    const c = client({token: token(user, {lifetime: 3}), getToken: () => token(user), refreshMargin: 2000});
    const drops = [];
    c.on("disconnected", (event) => drops.push(event));
    c.connect();
    const {expires} = await next(c, "refreshed");
    assert.ok(expires > Date.now() / 1000 + 500);
    assert.equal(await metric('pylon_auth_refreshes_total{result="ok"}'), before + 1);
    // Past the first token's exp and the grace (1 s), the connection is still served.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    assert.equal((await c.publish(`js:${user}`, 1)).type, "ack");
    assert.deepEqual(drops, []);
    c.disconnect();
  });

  test("on the server's refresh request", async () => {
    const user = newUser();
    const asked = await metric("pylon_auth_refresh_requests_total");
    // A negative margin: the client's own timer would fire after the server has asked.
    const c = client({token: token(user, {lifetime: 1}), getToken: () => token(user), refreshMargin: -60000});
    const drops = [];
    c.on("disconnected", (event) => drops.push(event));
    c.connect();
    await next(c, "refreshed");
    assert.ok((await metric("pylon_auth_refresh_requests_total")) > asked);
    assert.equal((await c.publish(`js:${user}`, 1)).type, "ack");
    assert.deepEqual(drops, []);
    c.disconnect();
  });
});

describe("recovery", () => {
  // A client subscribed with recover to a topic with history; it reconnects 100 ms after a drop,
  // on a clock that moves only when the test says.
  const recovering = () => {
    const user = newUser();
    const topic = `chat:${user}`;
    const clock = new FakeClock();
    const c = client({token: token(user), clock, random: () => 1, minReconnectDelay: 100}).connect();
    return {user, topic, clock, c, subscription: c.subscribe(topic, {recover: true})};
  };

  test("after a backend disconnect: every publication once, in order", async () => {
    const {user, topic, clock, c, subscription} = recovering();
    const seen = [];
    subscription.on("publication", ({data, offset}) => seen.push([data, offset]));
    await next(subscription, "subscribed");
    const publish = async (n) => assert.equal((await backend("publish", {topic, data: n})).body.offset, n);
    for (let n = 1; n <= 5; n++) await publish(n);
    const disconnected = next(c, "disconnected");
    await backend("disconnect", {user, code: 4100});
    await disconnected;
    for (let n = 6; n <= 10; n++) await publish(n);  // missed while the reconnect waits
    const resubscribed = next(subscription, "subscribed");
    clock.advance(100);
    assert.equal((await resubscribed).recovered, true);
    await publish(11);
    await until(() => seen.length >= 11, "eleven publications");
    assert.deepEqual(seen, Array.from({length: 11}, (_, i) => [i + 1, i + 1]));
    c.disconnect();
  });

  test("recovered:false (another epoch) is announced", async () => {
    const {user, topic, clock, c, subscription} = recovering();
    await next(subscription, "subscribed");
    await backend("publish", {topic, data: 1});
    await until(() => subscription.offset === 1, "the publication");
    const disconnected = next(c, "disconnected");
    await backend("disconnect", {user, code: 4100});
    await disconnected;
    subscription.epoch = "an-epoch-the-server-never-had";
    const unrecovered = next(subscription, "unrecovered");
    clock.advance(100);
    assert.equal((await unrecovered).position.offset, 1);
    c.disconnect();
  });
});

describe("heartbeat", () => {
  test("a silent connection is pinged, then given up and reconnected", async () => {
    const {WebSocketServer} = WebSocket;
    const peer = new WebSocketServer({host: "127.0.0.1", port: 0});
    await new Promise((resolve) => peer.on("listening", resolve));
    const received = [];
    peer.on("connection", (socket) => socket.on("message", (data) => received.push(JSON.parse(data))));
    const clock = new FakeClock();
    const c = new Pylon(`ws://127.0.0.1:${peer.address().port}/ws`,
                        {WebSocket, clock, pingInterval: 1000, pongTimeout: 500, random: () => 0});
    c.connect();
    await next(c, "connected");
    clock.advance(999);
    assert.deepEqual(received, []);
    clock.advance(1);
    await until(() => received.length === 1, "the ping");
    assert.equal(received[0].type, "ping");
    const disconnected = next(c, "disconnected");
    const reconnected = next(c, "connected");
    clock.advance(499);
    assert.equal(c.state, "connected");
    clock.advance(1);
    assert.deepEqual(await disconnected, {code: 1006, reason: "heartbeat timeout", status: undefined, reconnect: true});
    clock.advance(0);
    await reconnected;
    c.disconnect();
    peer.close();
  });
});
