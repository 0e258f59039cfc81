// pylon.js's presence (docs/js-client.md "Presence") against a real `pylon serve` whose `room`
// namespace has presence = true and join_leave = true (tests/integration/test_pylon_js.py).
import assert from "node:assert/strict";
import {describe, test} from "node:test";

import {PylonError} from "../../clients/js/pylon.js";
import {client, newUser, next, token} from "./support.mjs";

describe("presence", () => {
  test("join and leave events, presence and presenceStats", async () => {
    const ada = newUser();
    const bob = newUser();
    const topic = `room:${ada}`;
    const first = client({token: token(ada, {info: {name: "Ada"}})}).connect();
    const room = first.subscribe(topic, {joinLeave: true});
    const ownJoin = next(room, "join");
    await next(room, "subscribed");
    const {client: adaId} = await ownJoin;
    assert.match(adaId, /^[0-9a-f]{16}$/);

    const second = client({token: token(bob)}).connect();
    const bobJoin = next(room, "join", (event) => event.user === bob);
    const bobRoom = second.subscribe(topic, {joinLeave: true});
    await next(bobRoom, "subscribed");
    const joined = await bobJoin;
    assert.deepEqual(joined, {topic, client: joined.client, user: bob, info: undefined});

    assert.deepEqual(await room.presence(), {
      [adaId]: {user: ada, info: {name: "Ada"}},
      [joined.client]: {user: bob},
    });
    assert.deepEqual(await second.presenceStats(topic), {clients: 2, users: 2});

    const left = next(room, "leave");
    second.disconnect();
    assert.equal((await left).client, joined.client);
    assert.deepEqual(await room.presenceStats(), {clients: 1, users: 1});
    first.disconnect();
  });

  test("presence is refused on a namespace without it", async () => {
    const user = newUser();
    const c = client({token: token(user)}).connect();
    const subscription = c.subscribe(`js:${user}`);
    await next(subscription, "subscribed");
    await assert.rejects(subscription.presence(), (error) => error instanceof PylonError && error.code === "forbidden");
    c.disconnect();
  });
});
