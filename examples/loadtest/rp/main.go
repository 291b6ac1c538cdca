// Command rp is Go's httputil.ReverseProxy in front of one upstream, with
// nothing else: the floor a Go gateway starts from.
//
//	go run ./examples/loadtest/rp -addr 127.0.0.1:9001 -upstream http://127.0.0.1:9000
//
// Its transport keeps up to 256 idle connections to the upstream, as
// gatekit's proxy does (http.DefaultTransport keeps 2 per host, which under
// 64 connections would measure connection set-up, not proxying).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "upstream URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.SetXForwarded() },
		Transport: tr,
	}
	log.Fatal(http.ListenAndServe(*addr, rp))
}
