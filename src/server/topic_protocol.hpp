// The topic protocol of `pylon serve` (docs/protocol.md): the `/ws` JSON pub/sub endpoint and the
// `POST /api/publish` HTTP API for backends, both built on the public App API like any
// embedding application would build them.
#pragma once

#include "pylon/app.hpp"

namespace pylon {

// Adds `/ws` and, when [api_keys.NAME] are configured, the backend API: `POST /api/publish`,
// `/api/disconnect` and `/api/unsubscribe` (server/user_commands.hpp).
void add_topic_routes(App& app);

}  // namespace pylon
