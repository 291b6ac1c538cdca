package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The demo services stand for the bank's microservices. Each listens on a
// loopback port of its own and trusts whoever reaches it: only the gateway
// should, and the gateway tells them who the customer is (a path segment,
// a query value or X-Customer-Id), never the client.
//
// In a real deployment each service owns its data; here accounts and
// transactions share one in-memory ledger, so that a transfer shows in the
// balances.

// customer is a customer of the demo bank.
type customer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// account is one of a customer's accounts. Amounts are decimal strings,
// never floats.
type account struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Currency string `json:"currency"`
	Balance  string `json:"balance"`
	owner    string
	cents    int64
}

// transaction is a booked movement on an account.
type transaction struct {
	ID          string `json:"id"`
	Account     string `json:"account"`
	Amount      string `json:"amount"` // negative for money out
	Currency    string `json:"currency"`
	Description string `json:"description"`
	BookedAt    string `json:"booked_at"`
	customer    string
}

// ledger is the accounts and transactions services' shared store.
type ledger struct {
	mu        sync.Mutex
	customers map[string]customer
	accounts  []*account
	txs       []transaction
	nextTx    int
	now       func() time.Time
}

func newLedger(now func() time.Time) *ledger {
	l := &ledger{
		customers: map[string]customer{
			"c-100": {"c-100", "Ada Lovelace"},
			"c-200": {"c-200", "Alan Turing"},
		},
		accounts: []*account{
			{ID: "acc-1001", Kind: "checking", Currency: "EUR", owner: "c-100", cents: 245000},
			{ID: "acc-1002", Kind: "savings", Currency: "EUR", owner: "c-100", cents: 1020000},
			{ID: "acc-2001", Kind: "checking", Currency: "GBP", owner: "c-200", cents: 83025},
		},
		txs: []transaction{
			{ID: "tx-1", Account: "acc-1001", Amount: "2100.00", Currency: "EUR", Description: "Salary", BookedAt: "2026-05-01T08:00:00Z", customer: "c-100"},
			{ID: "tx-2", Account: "acc-1001", Amount: "-42.50", Currency: "EUR", Description: "Analytical Engine parts", BookedAt: "2026-05-03T14:12:00Z", customer: "c-100"},
			{ID: "tx-3", Account: "acc-2001", Amount: "-12.00", Currency: "GBP", Description: "Bletchley canteen", BookedAt: "2026-05-02T12:30:00Z", customer: "c-200"},
		},
		nextTx: 4,
		now:    now,
	}
	for _, a := range l.accounts {
		a.Balance = formatCents(a.cents)
	}
	return l
}

// services are the running demo services.
type services struct {
	accountsURL, transactionsURL, loansURL string
	stop                                   func()
}

// startServices starts the three demo services on free loopback ports.
func startServices(now func() time.Time) (*services, error) {
	l := newLedger(now)
	var stops []func()
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
	}
	var urls []string
	for _, h := range []http.Handler{l.accountsService(), l.transactionsService(), loansService()} {
		url, stop, err := serveLoopback(h)
		if err != nil {
			stopAll()
			return nil, err
		}
		urls = append(urls, url)
		stops = append(stops, stop)
	}
	return &services{accountsURL: urls[0], transactionsURL: urls[1], loansURL: urls[2], stop: stopAll}, nil
}

// serveLoopback serves h on a free loopback port and returns its base URL and
// a function that stops it.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { srv.Close(); <-done }, nil
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func replyError(w http.ResponseWriter, status int, msg string) {
	replyJSON(w, status, map[string]string{"error": msg})
}

// accountsService answers GET /customers/{id}/accounts.
func (l *ledger) accountsService() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{id}/accounts", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		c, ok := l.customers[r.PathValue("id")]
		if !ok {
			replyError(w, http.StatusNotFound, "no such customer")
			return
		}
		accounts := []account{}
		for _, a := range l.accounts {
			if a.owner == c.ID {
				accounts = append(accounts, *a)
			}
		}
		replyJSON(w, http.StatusOK, map[string]any{"customer": c, "accounts": accounts})
	})
	return mux
}

// transactionsService answers GET /customers/{id}/transactions (newest
// first) and POST /transfers, which moves money out of an account of the
// customer named by X-Customer-Id.
func (l *ledger) transactionsService() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{id}/transactions", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		id := r.PathValue("id")
		if _, ok := l.customers[id]; !ok {
			replyError(w, http.StatusNotFound, "no such customer")
			return
		}
		txs := []transaction{}
		for i := len(l.txs) - 1; i >= 0; i-- {
			if l.txs[i].customer == id {
				txs = append(txs, l.txs[i])
			}
		}
		replyJSON(w, http.StatusOK, map[string]any{"transactions": txs})
	})
	mux.HandleFunc("POST /transfers", func(w http.ResponseWriter, r *http.Request) {
		// The gateway has checked the body against the schema; the service
		// still checks what only it knows: ownership and funds.
		var t struct {
			From, To, Amount, Currency, Reference string
		}
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
			replyError(w, http.StatusBadRequest, "body must be a JSON object")
			return
		}
		cents, ok := parseCents(t.Amount)
		if !ok || cents <= 0 {
			replyError(w, http.StatusUnprocessableEntity, "amount must be positive")
			return
		}
		who := r.Header.Get("X-Customer-Id")
		l.mu.Lock()
		defer l.mu.Unlock()
		var from *account
		for _, a := range l.accounts {
			if a.ID == t.From && a.owner == who {
				from = a
			}
		}
		switch {
		case from == nil:
			replyError(w, http.StatusForbidden, "the source account is not one of the customer's")
			return
		case from.Currency != t.Currency:
			replyError(w, http.StatusUnprocessableEntity, "currency differs from the source account's")
			return
		case from.cents < cents:
			replyError(w, http.StatusUnprocessableEntity, "insufficient funds")
			return
		}
		from.cents -= cents
		from.Balance = formatCents(from.cents)
		tx := transaction{
			ID: "tx-" + strconv.Itoa(l.nextTx), Account: from.ID, Amount: formatCents(-cents), Currency: t.Currency,
			Description: strings.TrimSpace("Transfer to " + t.To + " " + t.Reference),
			BookedAt:    l.now().UTC().Format(time.RFC3339), customer: who,
		}
		l.nextTx++
		l.txs = append(l.txs, tx)
		w.Header().Set("Location", "/v1/transfers/"+tx.ID)
		replyJSON(w, http.StatusCreated, map[string]any{
			"id": tx.ID, "from": from.ID, "to": t.To, "amount": t.Amount, "currency": t.Currency,
			"status": "booked", "balance_after": from.Balance,
		})
	})
	return mux
}

// loansXML is what the legacy loan system holds, per customer, in the only
// format it speaks.
var loansXML = map[string]string{
	"c-100": `<?xml version="1.0" encoding="UTF-8"?>
<loans customer="c-100">
  <loan>
    <id>L-7001</id>
    <product>mortgage</product>
    <currency>EUR</currency>
    <principal>250000.00</principal>
    <outstanding>212345.67</outstanding>
    <rate>3.10</rate>
    <next_payment>2026-06-01</next_payment>
  </loan>
</loans>
`,
	"c-200": `<?xml version="1.0" encoding="UTF-8"?>
<loans customer="c-200">
  <loan>
    <id>L-7002</id>
    <product>car</product>
    <currency>GBP</currency>
    <principal>18000.00</principal>
    <outstanding>9400.00</outstanding>
    <rate>5.90</rate>
    <next_payment>2026-06-15</next_payment>
  </loan>
</loans>
`,
}

// loansService is the legacy loan system: GET /loans?customer=ID answers
// XML, and errors as XML too.
func loansService() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /loans", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		doc, ok := loansXML[r.URL.Query().Get("customer")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "<error><code>NO_CUSTOMER</code></error>\n")
			return
		}
		fmt.Fprint(w, doc)
	})
	return mux
}

// parseCents reads a decimal amount with two decimals, such as "12.50".
func parseCents(s string) (int64, bool) {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 || whole == "" {
		return 0, false
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseUint(frac, 10, 64)
	if err1 != nil || err2 != nil || w < 0 || w > 1e12 {
		return 0, false
	}
	return w*100 + int64(f), true
}

// formatCents writes cents as a decimal amount: -4250 as "-42.50".
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}
