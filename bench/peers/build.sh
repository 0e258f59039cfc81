#!/usr/bin/env bash
# Builds the benchmark peers into OUTDIR (default: build/bench-peers at the repository root).
# Not part of the project's default build; bench/run.py calls it. Every peer is small, built at
# -O2/-O3 with `nice`, from Debian packages only (scripts/deps.sh installs them):
#   beast_echo PORT         Boost.Beast, single-threaded async echo
#   websocketpp_echo PORT   websocketpp on standalone asio, one thread
#   gorilla_echo PORT       Go gorilla/websocket (GOPATH mode, offline: no module download)
#   ws_echo.js PORT         Node ws (run with NODE_PATH=/usr/share/nodejs; copied, not built)
#   raw_tcp_echo PORT       epoll echo of the bytes, no framing: the ceiling
#   echo_client ...         closed-loop client: raw TCP echo (and K in flight), churn, idle sockets
#   fanout_floor ...        one write per socket to N loopback sockets: the floor under fan-out
#   uws_echo PORT           uWebSockets, built by ../shared/peers/uwebsockets/build.sh
#   uws_tls_echo PORT CERT KEY [low-memory]
#                           uWebSockets over TLS: uSockets with OpenSSL (its WITH_OPENSSL=1)
# Usage: bench/peers/build.sh [OUTDIR [PEER...]]   (rebuilds only what is older than its source;
# with PEERs, only those: e.g. `build.sh DIR echo_client`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/bench-peers}
only=" ${*:2} "
wanted() { [ "$only" = "  " ] || [[ $only == *" $1 "* ]]; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
# C++17: websocketpp 0.8 and Boost 1.74's asio do not compile as C++20 with g++ 12.
jobs_cxx=(nice -n 10 g++ -std=c++17 -O3 -march=native -DNDEBUG -Wall -pthread)

stale() { [ ! -e "$1" ] || [ "$2" -nt "$1" ]; }

build_cxx() {  # name source [extra flags...]
  local name=$1 source=$2
  shift 2
  if wanted "$name" && stale "$out/$name" "$source"; then
    echo "build.sh: $name"
    "${jobs_cxx[@]}" "$source" -o "$out/$name" "$@"
  fi
}

# The C++ peers build two at a time (2 shared cores); a failed build stops the script.
pair() {
  build_cxx "$1" "$here/$1.cpp" & local first=$!
  build_cxx "$2" "$here/$2.cpp" & local second=$!
  wait $first && wait $second
}
pair raw_tcp_echo echo_client
pair beast_echo websocketpp_echo
build_cxx fanout_floor "$here/fanout_floor.cpp"

if wanted gorilla_echo && stale "$out/gorilla_echo" "$here/gorilla_echo/main.go"; then
  echo "build.sh: gorilla_echo"
  mkdir -p "$out/go-cache"
  (cd "$here/gorilla_echo" &&
    GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE="$out/go-cache" \
      nice -n 10 go build -o "$out/gorilla_echo" .)
fi

! wanted ws_echo.js || cp "$here/ws_echo.js" "$out/ws_echo.js"

uws=$root/../shared/peers/uwebsockets
[ -d "$uws" ] || uws=/work/shared/peers/uwebsockets
if [ -x "$uws/build.sh" ]; then
  if wanted uws_echo && stale "$out/uws/uws_echo" "$uws/echo.cpp"; then
    echo "build.sh: uws_echo"
    nice -n 10 "$uws/build.sh" "$out/uws" >/dev/null
  fi
  # The TLS peer: our uws_tls_echo.cpp on uSockets compiled the way its Makefile's WITH_OPENSSL=1
  # does (LIBUS_USE_OPENSSL, plus crypto/*.cpp as C++17), same flags as the plain peer.
  if wanted uws_tls_echo && stale "$out/uws-openssl/uws_tls_echo" "$here/uws_tls_echo.cpp"; then
    echo "build.sh: uws_tls_echo"
    u=$uws/src/uWebSockets
    objects=$out/uws-openssl/objects
    mkdir -p "$objects"
    flags=(-DLIBUS_USE_OPENSSL -O3 -march=native -flto=auto -I"$u/uSockets/src")
    for source in "$u"/uSockets/src/*.c "$u"/uSockets/src/eventing/epoll_kqueue.c \
      "$u"/uSockets/src/crypto/openssl.c; do
      nice -n 10 gcc -std=c11 "${flags[@]}" -c "$source" -o "$objects/$(basename "$source" .c).o"
    done
    nice -n 10 g++ -std=c++17 "${flags[@]}" -c "$u/uSockets/src/crypto/sni_tree.cpp" \
      -o "$objects/sni_tree.o"
    nice -n 10 g++ -std=c++2b "${flags[@]}" -DUWS_NO_ZLIB -I"$u/src" "$here/uws_tls_echo.cpp" \
      "$objects"/*.o -lssl -lcrypto -o "$out/uws-openssl/uws_tls_echo"
  fi
else
  echo "build.sh: no uWebSockets at $uws: the uWebSockets peers are skipped" >&2
fi
echo "build.sh: peers in $out"
