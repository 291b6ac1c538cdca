package routes_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tidwall/gjson"

	"github.com/gatekit/gatekit/examples/loadtest/routes"
)

func Example() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(routes.Reply)
	}))
	defer upstream.Close()
	h, err := routes.New(routes.Config{Upstream: upstream.URL, TokenCache: true})
	if err != nil {
		log.Fatal(err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()

	res, err := http.Get(gw.URL + "/pass/anything")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("GET /pass/anything:", res.StatusCode)

	req, _ := http.NewRequest("POST", gw.URL+"/api/orders", bytes.NewReader(routes.OrderBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+routes.Token(nil, "c-100"))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	reply := gjson.ParseBytes(body)
	fmt.Println("POST /api/orders:", res.StatusCode, "orderId:", reply.Get("orderId"),
		"internal:", reply.Get("internal").Exists(), "gateway:", reply.Get("gateway"))

	res, err = http.Get(gw.URL + "/agg")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("GET /agg:", res.StatusCode)
	// Output:
	// GET /pass/anything: 200
	// POST /api/orders: 200 orderId: ord-000123 internal: false gateway: gatekit
	// GET /agg: 200
}
