// Command upstream is the fixed-response backend of the loadtest harness: it
// answers every request, whatever its method and path, 200 with the same
// 1 KiB JSON object (routes.Reply, whose members the API route transforms),
// after reading and discarding the request body.
//
//	go run ./examples/loadtest/upstream -addr 127.0.0.1:9000
//
// It does as little as a net/http server can, so that the "direct" row of
// the harness is the physical limit of the machine for this reply.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"

	"github.com/gatekit/gatekit/examples/loadtest/routes"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	length := strconv.Itoa(len(routes.Reply))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hd := w.Header()
		// Direct map assignment: Set would canonicalise the keys on
		// every request.
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{length}
		w.Write(routes.Reply)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
