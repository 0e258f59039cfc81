// Benchmark peer: a WebSocket echo server on gorilla/websocket (Debian's
// golang-github-gorilla-websocket-dev, built offline in GOPATH mode by bench/peers/build.sh).
// gorilla_echo PORT: listens on 127.0.0.1:PORT, accepts any path, echoes every message with its
// type; 16 MiB max message, no compression.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"syscall"

	"github.com/gorilla/websocket"
)

const maxMessageSize = 16 << 20

var upgrader = websocket.Upgrader{
	ReadBufferSize:    4096,
	WriteBufferSize:   4096,
	EnableCompression: false,
	CheckOrigin:       func(*http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetReadLimit(maxMessageSize)
	for {
		kind, message, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, message); err != nil {
			return
		}
	}
}

func raiseOpenFileLimit() {
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit) == nil {
		limit.Cur = limit.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gorilla_echo PORT")
		os.Exit(2)
	}
	raiseOpenFileLimit()
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Args[1], http.HandlerFunc(echo)))
}
