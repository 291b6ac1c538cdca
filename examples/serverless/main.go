// Command serverless runs a gatekit gateway on 127.0.0.1:8080 whose routes are
// served by in-process functions written exactly as they would be for AWS
// Lambda behind API Gateway (the Lambda proxy integration, payload formats 2.0
// and 1.0). The same handler bodies deploy to AWS unchanged; here they run
// inside the gateway, with no AWS account, emulator or container. Each request
// is logged to stderr as one access-log line.
//
//	go run ./examples/serverless
//	go run ./examples/serverless -addr 127.0.0.1:9000
//
// Try:
//
//	curl -i 'localhost:8080/hello/ada?greeting=hi'  # format 2.0: path and query parameters, a cookie back
//	curl -i -b 'visits=41' localhost:8080/hello/ada # the cookie the handler reads (event.Cookies)
//	curl -i -X POST localhost:8080/orders -d '{"item":"book","quantity":2}'  # format 1.0: 201, two Set-Cookie fields
//	curl -i -X POST localhost:8080/orders -d 'not json'                      # the handler's own 400
//	curl -s localhost:8080/logo.png -o logo.png && file logo.png             # a base64-encoded binary reply
//	curl -i localhost:8080/readyz                                            # readiness, for a load balancer
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/gatekit/gatekit/gateway"
	"github.com/gatekit/gatekit/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the gateway listens on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run serves the gateway on ln until ctx is done, printing what to try to out
// and logging to logs.
func run(ctx context.Context, ln net.Listener, out, logs io.Writer) error {
	logger := slog.New(slog.NewTextHandler(logs, nil))
	hello, err := proxy.Lambda(proxy.LambdaV2Handler(helloHandler), proxy.LambdaConfig{Name: "hello"})
	if err != nil {
		return err
	}
	orders, err := proxy.Lambda(proxy.LambdaV1Handler(newOrdersHandler()), proxy.LambdaConfig{Name: "orders"})
	if err != nil {
		return err
	}
	logo, err := proxy.Lambda(proxy.LambdaV2Handler(newLogoHandler()), proxy.LambdaConfig{Name: "logo"})
	if err != nil {
		return err
	}
	router, err := gateway.NewRouter(gateway.RouterConfig{
		Options: gateway.Options{
			Logger:     logger,
			Observers:  []gateway.Observer{gateway.NewAccessLog(gateway.AccessLogConfig{Logger: logger})},
			RequestIDs: true,
		},
		Routes: []gateway.Route{
			{Name: "hello", Methods: []string{"GET"}, Path: "/hello/{name}", Handler: gateway.NewPipeline(hello)},
			// A Lambda function accepts 6 MB; this one needs far less.
			{Name: "orders", Methods: []string{"POST"}, Path: "/orders", MaxBodyBytes: 64 << 10, Handler: gateway.NewPipeline(orders)},
			{Name: "logo", Methods: []string{"GET"}, Path: "/logo.png", Handler: gateway.NewPipeline(logo)},
		},
	})
	if err != nil {
		return err
	}
	// Probes are served beside the route table, so they are not access-logged.
	health, err := gateway.NewHealth(gateway.HealthConfig{Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /livez", health.Live())
	mux.Handle("GET /readyz", health.Ready())
	mux.Handle("/", router)

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "gatekit serverless: Lambda-style functions behind a gateway on %s\n\nTry:\n", base)
	for _, c := range []string{
		"curl -i '" + base + "/hello/ada?greeting=hi'",
		"curl -i -b 'visits=41' " + base + "/hello/ada",
		"curl -i -X POST " + base + `/orders -d '{"item":"book","quantity":2}'`,
		"curl -i -X POST " + base + "/orders -d 'not json'",
		"curl -s " + base + "/logo.png -o logo.png && file logo.png",
		"curl -i " + base + "/readyz",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintln(out, "\nAccess log on stderr. Ctrl-C stops it (in-flight requests finish first).")
	srv := &gateway.Server{Handler: mux, Health: health, Logger: logger}
	return srv.Serve(ctx, ln)
}

// helloHandler is an API Gateway HTTP API handler (payload format 2.0), as
// written for github.com/aws/aws-lambda-go with events.APIGatewayV2HTTPRequest.
func helloHandler(ctx context.Context, ev proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
	greeting := ev.QueryStringParameters["greeting"]
	if greeting == "" {
		greeting = "hello"
	}
	visits := 0
	for _, c := range ev.Cookies { // format 2.0 has the Cookie field split into entries
		if v, ok := strings.CutPrefix(c, "visits="); ok {
			visits, _ = strconv.Atoi(v)
		}
	}
	visits++
	body, err := json.Marshal(map[string]any{
		"message":   greeting + ", " + ev.PathParameters["name"],
		"visits":    visits,
		"routeKey":  ev.RouteKey,
		"requestId": ev.RequestContext.RequestID,
	})
	if err != nil {
		return proxy.APIGatewayV2HTTPResponse{}, err
	}
	return proxy.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Cookies:    []string{"visits=" + strconv.Itoa(visits) + "; Path=/; HttpOnly"},
		Body:       string(body),
	}, nil
}

// newOrdersHandler returns a REST API handler (payload format 1.0), as written
// with events.APIGatewayProxyRequest. Its order numbers live in the closure,
// as they would live in a warm Lambda container.
func newOrdersHandler() func(context.Context, proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
	var last atomic.Int64
	return func(ctx context.Context, ev proxy.APIGatewayProxyRequest) (proxy.APIGatewayProxyResponse, error) {
		body := []byte(ev.Body)
		if ev.IsBase64Encoded { // as on AWS, a handler must check this
			var err error
			if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
				return jsonError(http.StatusBadRequest, "body is not valid base64"), nil
			}
		}
		var order struct {
			Item     string `json:"item"`
			Quantity int    `json:"quantity"`
		}
		if err := json.Unmarshal(body, &order); err != nil {
			return jsonError(http.StatusBadRequest, "body must be a JSON object"), nil
		}
		if order.Item == "" || order.Quantity < 1 {
			return jsonError(http.StatusUnprocessableEntity, "item and a positive quantity are required"), nil
		}
		id := "ord-" + strconv.FormatInt(last.Add(1), 10)
		reply, err := json.Marshal(map[string]any{"id": id, "item": order.Item, "quantity": order.Quantity, "status": "accepted"})
		if err != nil {
			return proxy.APIGatewayProxyResponse{}, err
		}
		return proxy.APIGatewayProxyResponse{
			StatusCode: http.StatusCreated,
			Headers:    map[string]string{"Content-Type": "application/json", "Location": "/orders/" + id},
			// Format 1.0 sends repeated fields, such as two cookies, in multiValueHeaders.
			MultiValueHeaders: map[string][]string{"Set-Cookie": {
				"last_order=" + id + "; Path=/; HttpOnly",
				"cart=; Path=/; Max-Age=0",
			}},
			Body: string(reply),
		}, nil
	}
}

func jsonError(status int, msg string) proxy.APIGatewayProxyResponse {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return proxy.APIGatewayProxyResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

// newLogoHandler returns a format 2.0 handler with a binary reply, which API
// Gateway, and so the gateway, decodes from base64.
func newLogoHandler() func(context.Context, proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, color.RGBA{R: uint8(16 * x), G: 0x80, B: uint8(16 * y), A: 0xff})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img) // writing to a bytes.Buffer does not fail
	logo := base64.StdEncoding.EncodeToString(buf.Bytes())
	return func(ctx context.Context, ev proxy.APIGatewayV2HTTPRequest) (proxy.APIGatewayV2HTTPResponse, error) {
		return proxy.APIGatewayV2HTTPResponse{
			StatusCode:      http.StatusOK,
			Headers:         map[string]string{"Content-Type": "image/png", "Cache-Control": "max-age=3600"},
			Body:            logo,
			IsBase64Encoded: true,
		}, nil
	}
}
