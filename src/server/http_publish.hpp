// POST /api/publish (docs/protocol.md "Backend API"): a backend publishes on a topic with a named
// API key (server/api_keys.hpp). On a topic whose history lives in Redis the answer, with the
// offset, is sent once Redis stored it (a deferred response). Routes are added on the main
// thread; requests run on loop threads.
#pragma once

#include <memory>

#include "pylon/app.hpp"
#include "server/api_keys.hpp"

namespace pylon {

// keys null (no [api_keys]): no route, only its counter.
void add_http_publish_route(App& app, std::shared_ptr<ApiKeys> keys);

}  // namespace pylon
