// Type declarations of pylon.js (docs/js-client.md).

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface PylonOptions {
  /** A connection token (JWT). */
  token?: string;
  /** Returns a fresh connection token: at the first connect, before expiry, after close 4001. */
  getToken?: () => string | Promise<string>;
  /** Where the token goes: a `pylon.token.<jwt>` subprotocol (default) or `?token=<jwt>`. */
  tokenIn?: "protocol" | "query";
  /** The WebSocket class: the `ws` package on Node 18/20; default the global WebSocket. */
  WebSocket?: unknown;
  /** ms: the first retry waits a random time up to this (default 500). */
  minReconnectDelay?: number;
  /** ms: the bound of the exponential backoff (default 20000). */
  maxReconnectDelay?: number;
  /** ms without any message before the client pings (default 25000). */
  pingInterval?: number;
  /** ms after that ping before the connection is given up (default 10000). */
  pongTimeout?: number;
  /** ms before the token's exp when a new one is fetched and sent (default 30000). */
  refreshMargin?: number;
  /** For tests: time and timers. */
  clock?: Clock;
  /** For tests: the jitter, a number in [0, 1). */
  random?: () => number;
}

export type State = "disconnected" | "connecting" | "connected";

export interface Ack {
  type: "ack";
  id: number;
  /** The publication's offset, on a topic with history. */
  offset?: number;
  positions?: Record<string, Position>;
}

export interface Position {
  offset: number;
  epoch: string;
  recovered?: boolean;
}

export interface Publication {
  topic: string;
  data: unknown;
  offset?: number;
}

/** A subscriber as presence lists it (docs/protocol.md "Presence"). */
export interface PresenceMember {
  /** The connection token's sub; "" for an anonymous connection. */
  user: string;
  /** The token's pylon.info, when it has one. */
  info?: unknown;
}

/** A join or leave on a namespace with join_leave = true. */
export interface PresenceEvent extends PresenceMember {
  topic: string;
  /** The connection's client id (16 hex digits, made by the server). */
  client: string;
}

export interface PresenceStats {
  clients: number;
  /** Distinct non-empty user ids. */
  users: number;
}

export interface DisconnectedEvent {
  code: number;
  reason: string;
  /** The HTTP status of a refused upgrade, where the WebSocket class shows it (Node's ws). */
  status?: number;
  /** Whether the client reconnects on its own. */
  reconnect: boolean;
}

export declare class PylonError extends Error {
  /** The server's error code (docs/protocol.md), or "disconnected", "token", "bad_url". */
  code: string;
}

interface Emitter<Events> {
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this;
  once<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this;
  off<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this;
}

export interface SubscriptionEvents {
  publication: Publication;
  subscribed: { topic: string; recovered?: boolean; position?: Position };
  /** Recovery was asked for and the history could not tell what was missed: reload state. */
  unrecovered: { topic: string; position?: Position };
  unsubscribed: { topic: string; reason: string };
  join: PresenceEvent;
  leave: PresenceEvent;
  error: PylonError;
}

export declare class Subscription implements Emitter<SubscriptionEvents> {
  readonly topic: string;
  readonly state: "unsubscribed" | "subscribing" | "subscribed";
  readonly offset?: number;
  readonly epoch?: string;
  publish(data: unknown): Promise<Ack>;
  unsubscribe(): void;
  presence(): Promise<Record<string, PresenceMember>>;
  presenceStats(): Promise<PresenceStats>;
  on<K extends keyof SubscriptionEvents>(event: K, listener: (value: SubscriptionEvents[K]) => void): this;
  once<K extends keyof SubscriptionEvents>(event: K, listener: (value: SubscriptionEvents[K]) => void): this;
  off<K extends keyof SubscriptionEvents>(event: K, listener: (value: SubscriptionEvents[K]) => void): this;
}

export interface PylonEvents {
  connecting: { attempt: number };
  connected: {};
  disconnected: DisconnectedEvent;
  reconnecting: { delay: number; attempt: number };
  /** A new token was accepted over the open connection; expires: its exp (seconds). */
  refreshed: { expires?: number };
  error: PylonError;
}

export declare class Pylon implements Emitter<PylonEvents> {
  constructor(url: string, options?: PylonOptions);
  readonly state: State;
  connect(): this;
  disconnect(): void;
  subscribe(topic: string, options?: { recover?: boolean; joinLeave?: boolean }): Subscription;
  publish(topic: string, data: unknown): Promise<Ack>;
  ping(): Promise<Ack>;
  /** Who is subscribed to topic, by client id; the caller must be subscribed to it. */
  presence(topic: string): Promise<Record<string, PresenceMember>>;
  presenceStats(topic: string): Promise<PresenceStats>;
  on<K extends keyof PylonEvents>(event: K, listener: (value: PylonEvents[K]) => void): this;
  once<K extends keyof PylonEvents>(event: K, listener: (value: PylonEvents[K]) => void): this;
  off<K extends keyof PylonEvents>(event: K, listener: (value: PylonEvents[K]) => void): this;
}

export declare function tokenExpiry(token: string): number | undefined;
export declare function backoffDelay(
  attempt: number,
  options: { minReconnectDelay: number; maxReconnectDelay: number },
  random: () => number,
): number;
export declare function closeAction(code: number): "stop" | "token" | "retry";
