// pylon.js: the client of pylon's /ws pub/sub protocol (docs/protocol.md) for browsers and Node 18+.
// One dependency-free ES module. It keeps one WebSocket open: reconnects with exponential backoff
// and full jitter as the close code says, resubscribes and recovers what was missed on topics with
// history, refreshes the connection token before it expires, and closes a connection that stays
// silent past the heartbeat timeout (browsers cannot see the server's pings). docs/js-client.md.

// Close codes (RFC 6455 §7.4.1 and pylon's own, docs/protocol.md) after which reconnecting with the
// same client would fail the same way: a protocol or policy violation, a message too large, the
// backend disconnecting the user (4002, and Centrifugo's "do not reconnect" range 4500-4999).
const kTerminalCodes = new Set([1002, 1003, 1007, 1008, 1009, 1010, 4002]);
const kTokenExpired = 4001;
const kGoingAway = 1001;
// The close code this client sends when it gives up on a connection (RFC 6455 §7.4.2: 4000-4999
// are the application's).
const kHeartbeatClose = 4000;

const defaults = {
  token: undefined,  // a connection token (JWT), or
  getToken: undefined,  // async () => a fresh token (called at first connect, before expiry, after 4001)
  tokenIn: "protocol",  // "protocol": a pylon.token.<jwt> subprotocol; "query": ?token=<jwt>
  WebSocket: undefined,  // a WebSocket class (Node: the `ws` package); default: the global one
  minReconnectDelay: 500,  // ms: the first retry waits a random time up to this
  maxReconnectDelay: 20000,  // ms: the bound of the exponential backoff
  pingInterval: 25000,  // ms without a message before the client pings the server
  pongTimeout: 10000,  // ms after that ping before the connection is given up as dead
  refreshMargin: 30000,  // ms before the token's exp when a new one is fetched and sent
  clock: undefined,  // {now(), setTimeout(fn, ms), clearTimeout(handle)}: for tests
  random: Math.random,  // () => [0, 1): the jitter, for tests
};

export class PylonError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "PylonError";
    this.code = code;
  }
}

// A minimal event emitter: on/off/once, listeners called in order, a throwing listener does not
// stop the others (it is reported asynchronously, like an uncaught error).
class Emitter {
  constructor() {
    this._listeners = new Map();
  }
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(listener);
    return this;
  }
  off(event, listener) {
    const list = this._listeners.get(event);
    if (list) this._listeners.set(event, list.filter((l) => l !== listener));
    return this;
  }
  once(event, listener) {
    const wrapper = (value) => {
      this.off(event, wrapper);
      listener(value);
    };
    return this.on(event, wrapper);
  }
  _emit(event, value) {
    for (const listener of this._listeners.get(event) || []) {
      try {
        listener(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }
}

// The payload's exp (seconds since the epoch) of a JWT, or undefined.
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

// Full jitter (a random delay from 0 to the exponential bound): clients dropped together come back
// spread over the whole window instead of in waves.
export function backoffDelay(attempt, options, random) {
  const bound = Math.min(options.maxReconnectDelay, options.minReconnectDelay * 2 ** attempt);
  return random() * bound;
}

// What a close code means for reconnecting: "stop", "token" (a new token first) or "retry".
export function closeAction(code) {
  if (kTerminalCodes.has(code) || (code >= 4500 && code <= 4999)) return "stop";
  if (code === kTokenExpired) return "token";
  return "retry";
}

// Seconds of a Retry-After header (delay-seconds or an HTTP date), or 0.
function retryAfterSeconds(value, now) {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? 0 : Math.max(0, (date - now) / 1000);
}

export class Subscription extends Emitter {
  constructor(client, topic, options) {
    super();
    this.client = client;
    this.topic = topic;
    this.recover = Boolean(options.recover);
    this.joinLeave = Boolean(options.joinLeave);  // 'join' and 'leave' events wanted
    this.state = "unsubscribed";  // unsubscribed | subscribing | subscribed
    // The last offset seen and its epoch, on a topic with history (docs/protocol.md).
    this.offset = undefined;
    this.epoch = undefined;
  }

  // Resolves with the ack (with `offset` on a topic with history).
  publish(data) {
    return this.client.publish(this.topic, data);
  }

  unsubscribe() {
    this.client._unsubscribe(this);
  }

  // Who is subscribed, and how many (docs/protocol.md "Presence").
  presence() {
    return this.client.presence(this.topic);
  }

  presenceStats() {
    return this.client.presenceStats(this.topic);
  }

  _position() {
    return this.recover && this.epoch !== undefined ? {offset: this.offset, epoch: this.epoch} : undefined;
  }

  _publication(message) {
    if (this.state === "unsubscribed") return;
    if (message.offset !== undefined) {
      // Defence in depth: the server sends no offset twice, but a publication at or below the
      // last one seen would be a duplicate for the application.
      if (this.offset !== undefined && message.offset <= this.offset) return;
      this.offset = message.offset;
    }
    this._emit("publication", {topic: this.topic, data: message.data, offset: message.offset});
  }

  _acked(ack, asked) {
    const position = ack.positions && ack.positions[this.topic];
    if (position) {
      this.epoch = position.epoch;
      if (this.offset === undefined || position.recovered !== true || position.offset > this.offset)
        this.offset = position.offset;
    }
    this.state = "subscribed";
    const recovered = asked ? Boolean(position && position.recovered) : undefined;
    this._emit("subscribed", {topic: this.topic, recovered, position});
    // The history could not tell what was missed: the application reloads its state.
    if (asked && !recovered) this._emit("unrecovered", {topic: this.topic, position});
  }
}

export class Pylon extends Emitter {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {...defaults, ...options};
    const globals = globalThis;
    this._clock = this.options.clock || {
      now: () => Date.now(),
      setTimeout: (fn, ms) => globals.setTimeout(fn, ms),
      clearTimeout: (handle) => globals.clearTimeout(handle),
    };
    this._WebSocket = this.options.WebSocket || globals.WebSocket;
    if (!this._WebSocket) throw new PylonError("no_websocket", "no WebSocket class: pass options.WebSocket");
    this._token = this.options.token;
    this.state = "disconnected";  // disconnected | connecting | connected
    this._subscriptions = new Map();
    this._pending = new Map();  // request id -> {resolve, reject, subscription?, recover?}
    this._queue = [];  // requests made while connecting, sent on open
    this._nextId = 1;
    this._attempt = 0;
    this._socket = null;
    this._timers = {};
    this._handshake = {};  // what Node's ws saw of a refused upgrade: status, retryAfter
  }

  connect() {
    if (this.state !== "disconnected") return this;
    this._attempt = 0;
    this._open();
    return this;
  }

  disconnect() {
    this._stop();
    this._closed({code: 1000, reason: "client disconnect"}, false);
  }

  subscribe(topic, options = {}) {
    let subscription = this._subscriptions.get(topic);
    if (!subscription) {
      subscription = new Subscription(this, topic, options);
      this._subscriptions.set(topic, subscription);
    }
    if (options.recover !== undefined) subscription.recover = Boolean(options.recover);
    if (options.joinLeave !== undefined) subscription.joinLeave = Boolean(options.joinLeave);
    if (subscription.state === "unsubscribed") {
      subscription.state = "subscribing";
      if (this.state === "connected") this._sendSubscribe(subscription);
    }
    return subscription;
  }

  // Resolves with the server's ack, rejects with a PylonError (its code: docs/protocol.md).
  publish(topic, data) {
    return this._request({type: "publish", topic, data});
  }

  ping() {
    return this._request({type: "ping"});
  }

  // Resolves with {clientId: {user, info}} of the topic's subscribers (the caller must be one).
  presence(topic) {
    return this._request({type: "presence", topic}).then((ack) => ack.presence);
  }

  // Resolves with {clients, users}.
  presenceStats(topic) {
    return this._request({type: "presence_stats", topic}).then(({clients, users}) => ({clients, users}));
  }

  _unsubscribe(subscription) {
    if (subscription.state === "unsubscribed") return;
    subscription.state = "unsubscribed";
    if (this.state === "connected") this._send({type: "unsubscribe", topics: [subscription.topic]});
    subscription._emit("unsubscribed", {topic: subscription.topic, reason: "client"});
  }

  _request(body, extra = {}) {
    if (this.state === "disconnected")
      return Promise.reject(new PylonError("disconnected", "the client is not connected"));
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      const sent = this.state === "connected";
      this._pending.set(id, {resolve, reject, sent, ...extra});
      const request = {...body, id};
      if (sent) this._send(request);
      else this._queue.push(request);
    });
  }

  _send(message) {
    this._socket.send(JSON.stringify(message));
  }

  _sendSubscribe(subscription) {
    const request = {type: "subscribe", topics: [subscription.topic]};
    const position = subscription._position();
    if (position) request.recover = {[subscription.topic]: position};
    if (subscription.joinLeave) request.join_leave = true;
    this._request(request, {subscription, recover: Boolean(position)}).catch(() => {});
  }

  async _open() {
    this._setState("connecting", {attempt: this._attempt});
    const generation = (this._generation = (this._generation || 0) + 1);
    if (this.options.getToken && (!this._token || this._expiresSoon())) {
      try {
        this._token = await this.options.getToken();
      } catch (error) {
        if (generation !== this._generation) return;
        this._emit("error", new PylonError("token", String(error)));
        return this._scheduleReconnect(0);
      }
      if (generation !== this._generation) return;  // disconnect() meanwhile
    }
    let url = this.url;
    const protocols = ["pylon.v1"];
    if (this._token && this.options.tokenIn === "query")
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this._token);
    else if (this._token) protocols.push("pylon.token." + this._token);
    this._handshake = {};
    let socket;
    try {
      socket = new this._WebSocket(url, protocols);
    } catch (error) {
      this._emit("error", new PylonError("bad_url", String(error)));
      return this._closed({code: 1006, reason: String(error)}, false);
    }
    this._socket = socket;
    // Node's ws shows a refused upgrade's status and headers; browsers show only code 1006.
    if (typeof socket.on === "function") {
      socket.on("unexpected-response", (request, response) => {
        this._handshake = {
          status: response.statusCode,
          retryAfter: retryAfterSeconds(response.headers["retry-after"], this._clock.now()),
        };
        socket.terminate();
      });
    }
    socket.onopen = () => this._opened();
    socket.onmessage = (event) => this._message(event.data);
    socket.onerror = () => {};  // the close event that follows says what happened
    socket.onclose = (event) => {
      if (socket !== this._socket) return;
      this._closed({code: event.code, reason: event.reason}, true);
    };
  }

  _opened() {
    this._attempt = 0;
    this._lastReceived = this._clock.now();
    this._setState("connected", {});
    this._armHeartbeat(this.options.pingInterval);
    this._armRefresh();
    for (const subscription of this._subscriptions.values()) {
      if (subscription.state !== "unsubscribed") {
        subscription.state = "subscribing";
        this._sendSubscribe(subscription);
      }
    }
    for (const request of this._queue.splice(0)) {
      this._pending.get(request.id).sent = true;
      this._send(request);
    }
  }

  _message(text) {
    this._lastReceived = this._clock.now();
    if (typeof text !== "string") return;  // binary publications are not this client's
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "message": {
        const subscription = this._subscriptions.get(message.topic);
        if (subscription) subscription._publication(message);
        return;
      }
      case "join":
      case "leave": {
        const subscription = this._subscriptions.get(message.topic);
        if (subscription && subscription.state !== "unsubscribed") {
          const {topic, client, user, info} = message;
          subscription._emit(message.type, {topic, client, user, info});
        }
        return;
      }
      case "ack":
      case "error":
        return this._answer(message);
      case "unsubscribed": {
        const subscription = this._subscriptions.get(message.topic);
        if (!subscription) return;
        subscription.state = "unsubscribed";
        subscription._emit("unsubscribed", {topic: message.topic, reason: message.reason});
        return;
      }
      case "refresh":
        return this._refresh();
    }
  }

  _answer(message) {
    const pending = this._pending.get(message.id);
    if (message.id === undefined || !pending) {
      if (message.type === "error") this._emit("error", new PylonError(message.code, message.message));
      return;
    }
    this._pending.delete(message.id);
    const subscription = pending.subscription;
    if (message.type === "ack") {
      if (subscription && subscription.state === "subscribing") subscription._acked(message, pending.recover);
      return pending.resolve(message);
    }
    const error = new PylonError(message.code, message.message);
    if (subscription && subscription.state === "subscribing") {
      subscription.state = "unsubscribed";
      subscription._emit("error", error);
    }
    pending.reject(error);
  }

  // An expired token is never offered again, whatever the margin.
  _expiresSoon() {
    const exp = tokenExpiry(this._token);
    return exp !== undefined && exp * 1000 - Math.max(0, this.options.refreshMargin) <= this._clock.now();
  }

  // Before the token expires, a new one goes over the open connection: the server never has to ask.
  _armRefresh() {
    this._clear("refresh");
    const exp = this.options.getToken && tokenExpiry(this._token);
    if (exp === undefined) return;
    const delay = Math.max(0, exp * 1000 - this.options.refreshMargin - this._clock.now());
    this._timers.refresh = this._clock.setTimeout(() => this._refresh(), delay);
  }

  async _refresh() {
    if (!this.options.getToken || this._refreshing || this.state !== "connected") return;
    this._refreshing = true;
    const socket = this._socket;
    try {
      const token = await this.options.getToken();
      if (socket !== this._socket) return;
      await this._request({type: "refresh", token});
      this._token = token;
      this._armRefresh();
      this._emit("refreshed", {expires: tokenExpiry(token)});
    } catch (error) {
      // Refused: the server closes with 4001 once its grace ends, and the reconnect gets a new token.
      this._emit("error", error instanceof PylonError ? error : new PylonError("token", String(error)));
    } finally {
      this._refreshing = false;
    }
  }

  // Anything received proves the connection alive; after pingInterval of silence the client
  // pings, and after pongTimeout more it gives the connection up.
  _armHeartbeat(delay) {
    this._clear("heartbeat");
    this._timers.heartbeat = this._clock.setTimeout(() => this._checkHeartbeat(), delay);
  }

  _checkHeartbeat() {
    const silent = this._clock.now() - this._lastReceived;
    if (silent < this.options.pingInterval) return this._armHeartbeat(this.options.pingInterval - silent);
    if (silent < this.options.pingInterval + this.options.pongTimeout) {
      if (!(this._pinged > this._lastReceived)) {
        this._pinged = this._clock.now();
        this.ping().catch(() => {});
      }
      return this._armHeartbeat(this.options.pingInterval + this.options.pongTimeout - silent);
    }
    const socket = this._socket;
    this._socket = null;  // its close event, if it ever comes, is not this connection's any more
    try {
      socket.close(kHeartbeatClose, "heartbeat timeout");
    } catch {}
    this._closed({code: 1006, reason: "heartbeat timeout"}, true);
  }

  _closed(event, mayReconnect) {
    const wasActive = this.state !== "disconnected";
    this._stop();
    // What was sent may or may not have been done: its promise fails, the application decides.
    // What was still queued waits for the next connection, unless there is none.
    for (const [id, pending] of this._pending) {
      if (!pending.sent) continue;
      this._pending.delete(id);
      pending.reject(new PylonError("disconnected", "the connection closed before the answer"));
    }
    for (const subscription of this._subscriptions.values())
      if (subscription.state === "subscribed") subscription.state = "subscribing";
    const handshake = this._handshake;
    let action = mayReconnect ? closeAction(event.code) : "stop";
    if (handshake.status === 401 || (action === "token" && !this.options.getToken)) {
      action = this.options.getToken ? "token" : "stop";
    }
    if (action === "token") this._token = undefined;
    const reconnect = action !== "stop" && wasActive;
    this.state = "disconnected";
    this._emit("disconnected", {code: event.code, reason: event.reason, status: handshake.status, reconnect});
    if (!reconnect) {
      for (const request of this._queue.splice(0)) this._failQueued(request);
      return;
    }
    let delay = backoffDelay(this._attempt, this.options, this.options.random);
    if (event.code === kGoingAway) delay = this.options.random() * this.options.minReconnectDelay;
    delay = Math.max(delay, (handshake.retryAfter || 0) * 1000);
    this._attempt++;
    this._scheduleReconnect(delay);
  }

  _failQueued(request) {
    const pending = this._pending.get(request.id);
    if (!pending) return;
    this._pending.delete(request.id);
    pending.reject(new PylonError("disconnected", "the client is not connected"));
  }

  _scheduleReconnect(delay) {
    this._clear("reconnect");
    this.state = "connecting";
    this._timers.reconnect = this._clock.setTimeout(() => this._open(), delay);
    this._emit("reconnecting", {delay, attempt: this._attempt});
  }

  // Ends the connection in hand, its timers and any reconnect planned.
  _stop() {
    for (const name of Object.keys(this._timers)) this._clear(name);
    this._generation = (this._generation || 0) + 1;
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      try {
        socket.close(1000);
      } catch {}
    }
  }

  _clear(name) {
    if (this._timers[name] !== undefined) this._clock.clearTimeout(this._timers[name]);
    delete this._timers[name];
  }

  _setState(state, detail) {
    this.state = state;
    this._emit(state, detail);
  }
}
