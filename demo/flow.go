package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

const (
	server   = trace.SpanKindServer
	client   = trace.SpanKindClient
	internal = trace.SpanKindInternal
	producer = trace.SpanKindProducer
	consumer = trace.SpanKindConsumer
)

// inventoryTimeout is order-service's client timeout towards inventory-service.
const inventoryTimeout = 250 * time.Millisecond

// generator plays checkouts, one at a time, across the fleet.
type generator struct {
	gw, orders, inventory, payments, fraud, ledger, notify *service

	plan    *planner
	rng     *rand.Rand // latencies and order data
	breaker *breaker
	c       *counters

	mu     sync.Mutex
	bugErr error
}

func newGenerator(seed int64, services map[string]*service, c *counters) *generator {
	g := &generator{
		gw:        services["api-gateway"],
		orders:    services["order-service"],
		inventory: services["inventory-service"],
		payments:  services["payment-service"],
		fraud:     services["fraud-service"],
		ledger:    services["ledger-service"],
		notify:    services["notification-service"],
		plan:      newPlanner(seed),
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x1a7e_0c1e)),
		breaker:   newBreaker(),
		c:         c,
	}
	for _, s := range services {
		s.gen = g
	}
	return g
}

// bug records a broken invariant of the demo itself (a context that did not
// cross a hop); Run reports the first one.
func (g *generator) bug(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bugErr == nil {
		g.bugErr = fmt.Errorf("BUG: %w", err)
	}
}

func (g *generator) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bugErr
}

// d draws a latency around median, log-normally, as service latencies are.
func (g *generator) d(median time.Duration, spread float64) time.Duration {
	v := time.Duration(float64(median) * math.Exp(spread*g.rng.NormFloat64()))
	return max(v, 20*time.Microsecond)
}

// net is one network traversal inside the cluster.
func (g *generator) net() time.Duration { return g.d(600*time.Microsecond, 0.4) }

// order is the business data of one checkout.
type order struct {
	id, userID, currency, method, provider, providerHost string
	amount                                               float64
	items                                                int
	txID, declineCode                                    string
}

func (g *generator) newOrder(sc scenario) *order {
	o := &order{
		id:     fmt.Sprintf("ord_%012x", g.rng.Uint64()&0xffffffffffff),
		userID: fmt.Sprintf("u_%06d", 1+g.rng.IntN(250000)),
		items:  1 + g.rng.IntN(4),
	}
	o.amount = math.Round(float64(o.items)*19.99*math.Exp(0.6*g.rng.NormFloat64())*100) / 100
	switch r := g.rng.Float64(); {
	case r < 0.6:
		o.currency = "USD"
	case r < 0.9:
		o.currency = "EUR"
	default:
		o.currency = "GBP"
	}
	switch r := g.rng.Float64(); {
	case sc == scenarioDeclined || r < 0.65:
		o.method = "card"
	case r < 0.8:
		o.method = "paypal"
	case r < 0.95:
		o.method = "apple_pay"
	default:
		o.method = "bank_transfer"
	}
	o.provider, o.providerHost = "stripe", "api.stripe.com"
	if o.method == "paypal" {
		o.provider, o.providerHost = "paypal", "api-m.paypal.com"
	}
	o.txID = fmt.Sprintf("ch_%016x", g.rng.Uint64())
	o.declineCode = []string{"insufficient_funds", "do_not_honor", "expired_card", "incorrect_cvc"}[g.rng.IntN(4)]
	return o
}

// outcome is how a call ended, as the caller sees it.
type outcome struct {
	status  int    // HTTP status
	errType string // error.type when status >= 400
	msg     string
}

func (o outcome) ok() bool { return o.status < 400 }

var okOutcome = outcome{status: http.StatusOK}

// checkout plays one whole trace starting at t0.
func (g *generator) checkout(t0 time.Time) {
	sc, fraudDown := g.plan.next()
	o := g.newOrder(sc)
	root := g.gw.start(nil, "POST /checkout", server, t0,
		attribute.String("http.request.method", "POST"),
		attribute.String("url.path", "/checkout"),
		attribute.String("url.scheme", "https"),
		attribute.String("http.route", "/checkout"),
		attribute.String("server.address", "shop.example.com"),
		attribute.String("client.address", fmt.Sprintf("203.0.113.%d", 1+g.rng.IntN(254))),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
		attribute.String("user.id", o.userID),
		attribute.Float64("payment.amount", o.amount),
		attribute.String("payment.currency", o.currency),
	)
	t := t0.Add(g.d(300*time.Microsecond, 0.3))
	auth := g.gw.start(root, "auth.verify_token", internal, t, attribute.String("user.id", o.userID))
	t = t.Add(g.d(1200*time.Microsecond, 0.3))
	auth.end(t)

	res, t := g.createOrder(root, t, o, sc, fraudDown)
	status := http.StatusCreated
	if !res.ok() {
		status = res.status
	}
	root.set(attribute.Int("http.response.status_code", status))
	t = t.Add(g.d(200*time.Microsecond, 0.3))
	if status >= 500 { // a 4xx is the client's doing, not the server's error
		root.fail(t, res.errType, res.msg)
	}
	root.end(t)
	g.c.traces.Add(1)
}

// rpc opens a client span in from's service and the matching server span in
// to, with the context carried between them in request headers.
func (g *generator) rpc(from *span, to *service, t time.Time, clientName string, clientAttrs []attribute.KeyValue,
	serverName string, serverAttrs []attribute.KeyValue,
) (cl, srv *span, st time.Time) {
	cl = from.svc.start(from, clientName, client, t, clientAttrs...)
	cl.peer(to.name)
	h := http.Header{}
	cl.inject(h)
	st = t.Add(g.net())
	srv = to.serve(h, serverName, server, st, serverAttrs...)
	return cl, srv, st
}

func httpClientAttrs(method, host string, port int, path string, extra ...attribute.KeyValue) []attribute.KeyValue {
	return append([]attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.full", "http://"+net.JoinHostPort(host, strconv.Itoa(port))+path),
		attribute.String("server.address", host),
		attribute.Int("server.port", port),
	}, extra...)
}

func httpServerAttrs(method, path, route string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.path", path),
		attribute.String("url.scheme", "http"),
		attribute.String("http.route", route),
	}
}

// respond ends a server span and then its client span with HTTP semantics:
// 5xx is a server error, any status >= 400 a client error.
func (g *generator) respond(cl, srv *span, t time.Time, res outcome) time.Time {
	srv.set(attribute.Int("http.response.status_code", res.status))
	if res.status >= 500 {
		srv.fail(t, res.errType, res.msg)
	}
	srv.end(t)
	t = t.Add(g.net())
	cl.set(attribute.Int("http.response.status_code", res.status))
	if !res.ok() {
		cl.fail(t, res.errType, res.msg)
	}
	cl.end(t)
	return t
}

// db is one PostgreSQL statement made by parent's service.
func (g *generator) db(parent *span, t time.Time, op, table, query string, median time.Duration, errMsg string) time.Time {
	name, attrs := op, []attribute.KeyValue{
		attribute.String("db.system", "postgresql"),
		attribute.String("db.namespace", "shop"),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", query),
		attribute.String("server.address", "postgres-primary.shop.svc"),
		attribute.Int("server.port", 5432),
	}
	if table != "" {
		name += " " + table
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	// The driver's own bookkeeping comes before the statement goes out.
	t = t.Add(g.d(60*time.Microsecond, 0.3))
	sp := parent.svc.start(parent, name, client, t, attrs...)
	sp.peer("postgresql")
	t = t.Add(g.d(median, 0.5))
	if errMsg != "" {
		sp.set(attribute.String("db.response.status_code", "40001"))
		sp.fail(t, "40001", errMsg)
	}
	sp.end(t)
	return t
}

// createOrder: api-gateway → order-service, over gRPC.
func (g *generator) createOrder(root *span, t time.Time, o *order, sc scenario, fraudDown bool) (outcome, time.Time) {
	rpcAttrs := []attribute.KeyValue{
		attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.service", "order.v1.OrderService"),
		attribute.String("rpc.method", "CreateOrder"),
	}
	cl, srv, t := g.rpc(root, g.orders, t, "CreateOrder",
		append(rpcAttrs, attribute.String("server.address", "order-service"), attribute.Int("server.port", 9090)),
		"CreateOrder", append(rpcAttrs, attribute.String("user.id", o.userID)))
	srv.set(attribute.String("order.id", o.id), attribute.Int("order.item_count", o.items))

	t = g.db(srv, t.Add(g.d(150*time.Microsecond, 0.3)), "INSERT", "orders",
		"INSERT INTO orders (id, user_id, amount, currency, status) VALUES ($1, $2, $3, $4, 'pending')", 2*time.Millisecond, "")
	t = g.reserveStock(srv, t, o, sc == scenarioTimeout)
	res, t := g.charge(srv, t, o, sc, fraudDown)
	if res.ok() {
		t = g.db(srv, t, "UPDATE", "orders", "UPDATE orders SET status = 'confirmed' WHERE id = $1", 1500*time.Microsecond, "")
		t = g.publishOrderConfirmed(srv, t, o)
	} else {
		t = g.cancelOrder(srv, t, o, res)
	}
	t = t.Add(g.d(150*time.Microsecond, 0.3))

	// gRPC status: declines are FAILED_PRECONDITION (not a server fault),
	// an unavailable fraud check UNAVAILABLE, a compensated saga ABORTED.
	code, codeName := 0, "OK"
	switch {
	case res.status == http.StatusPaymentRequired:
		code, codeName = 9, "FAILED_PRECONDITION"
	case res.status == http.StatusServiceUnavailable:
		code, codeName = 14, "UNAVAILABLE"
	case !res.ok():
		code, codeName = 10, "ABORTED"
	}
	srv.set(attribute.Int("rpc.grpc.status_code", code))
	if code == 14 || code == 10 {
		srv.fail(t, codeName, res.msg)
	}
	srv.end(t)
	t = t.Add(g.net())
	cl.set(attribute.Int("rpc.grpc.status_code", code))
	if code != 0 {
		cl.fail(t, codeName, res.msg)
	}
	cl.end(t)
	return res, t
}

// reserveStock: order-service → inventory-service over HTTP. With timeout
// set, the first attempt outlives the client's deadline and is retried with
// the same idempotency key; the retry waits for the first to commit.
func (g *generator) reserveStock(orderSrv *span, t time.Time, o *order, timeout bool) time.Time {
	attempt := func(t time.Time, resend int) (cl, srv *span, st time.Time) {
		extra := []attribute.KeyValue{attribute.String("url.template", "/reservations")}
		if resend > 0 {
			extra = append(extra, attribute.Int("http.resend_count", resend))
		}
		cl, srv, st = g.rpc(orderSrv, g.inventory, t, "POST /reservations",
			httpClientAttrs("POST", "inventory-service", 8080, "/reservations", extra...),
			"POST /reservations", httpServerAttrs("POST", "/reservations", "/reservations"))
		srv.set(attribute.String("order.id", o.id), attribute.Int("order.item_count", o.items))
		return cl, srv, st
	}
	const lockQuery = "SELECT quantity FROM stock WHERE sku = ANY($1) FOR UPDATE"
	const reserveQuery = "INSERT INTO reservations (order_id, sku, quantity) VALUES ($1, $2, $3)"

	if !timeout {
		cl, srv, st := attempt(t, 0)
		st = g.db(srv, st, "SELECT", "stock", lockQuery, 2*time.Millisecond, "")
		st = g.db(srv, st, "INSERT", "reservations", reserveQuery, 2*time.Millisecond, "")
		return g.respond(cl, srv, st.Add(g.d(200*time.Microsecond, 0.3)), outcome{status: http.StatusCreated})
	}

	// First attempt: the row lock is held by another checkout for longer
	// than order-service is willing to wait.
	g.c.retries.Add(1)
	cl, srv, st := attempt(t, 0)
	deadline := t.Add(inventoryTimeout)
	st = g.db(srv, st, "SELECT", "stock", lockQuery, 400*time.Millisecond, "")
	st = g.db(srv, st, "INSERT", "reservations", reserveQuery, 2*time.Millisecond, "")
	firstDone := st.Add(g.d(200*time.Microsecond, 0.3))
	// The server finished after its client gave up; nobody read its 201.
	srv.set(attribute.Int("http.response.status_code", http.StatusCreated))
	srv.end(firstDone)
	msg := fmt.Sprintf("POST http://inventory-service:8080/reservations: context deadline exceeded (Client.Timeout exceeded while awaiting headers after %s)", inventoryTimeout)
	cl.event(deadline, "timeout", attribute.String("http.client.timeout", inventoryTimeout.String()))
	cl.fail(deadline, "timeout", msg)
	cl.end(deadline)

	// Retry after a jittered backoff; the idempotency key makes the server
	// return the reservation the first attempt made, once its lock is gone.
	t = deadline.Add(g.d(50*time.Millisecond, 0.2))
	cl, srv, st = attempt(t, 1)
	srv.set(attribute.Bool("reservation.idempotent_replay", true))
	if firstDone.After(st) {
		st = firstDone
	}
	st = g.db(srv, st.Add(g.d(300*time.Microsecond, 0.3)), "SELECT", "reservations",
		"SELECT * FROM reservations WHERE order_id = $1", 1200*time.Microsecond, "")
	return g.respond(cl, srv, st.Add(g.d(200*time.Microsecond, 0.3)), outcome{status: http.StatusOK})
}

// charge: order-service → payment-service, which checks fraud, charges the
// processor and writes the ledger, refunding if the ledger write fails.
func (g *generator) charge(orderSrv *span, t time.Time, o *order, sc scenario, fraudDown bool) (outcome, time.Time) {
	cl, srv, t := g.rpc(orderSrv, g.payments, t, "POST /charge",
		httpClientAttrs("POST", "payment-service", 8080, "/charge", attribute.String("url.template", "/charge")),
		"POST /charge", httpServerAttrs("POST", "/charge", "/charge"))
	payAttrs := []attribute.KeyValue{
		attribute.String("order.id", o.id),
		attribute.Float64("payment.amount", o.amount),
		attribute.String("payment.currency", o.currency),
		attribute.String("payment.method", o.method),
	}
	srv.set(payAttrs...)
	t = t.Add(g.d(200*time.Microsecond, 0.3))
	ch := g.payments.start(srv, "charge", internal, t, append(payAttrs, attribute.String("payment.provider", o.provider))...)

	res, t := g.fraudCheck(ch, t, o, fraudDown)
	if res.ok() {
		res, t = g.processorCharge(ch, t, o, sc == scenarioDeclined)
	}
	if res.ok() {
		var ledgerRes outcome
		ledgerRes, t = g.ledgerAppend(ch, t, o, sc == scenarioSaga)
		if !ledgerRes.ok() {
			t = g.refund(ch, t, o)
			res = outcome{status: http.StatusInternalServerError, errType: "ledger_append_failed",
				msg: "ledger append failed; charge " + o.txID + " refunded"}
		}
	}
	t = t.Add(g.d(100*time.Microsecond, 0.3))
	if !res.ok() {
		ch.fail(t, res.errType, res.msg)
	}
	ch.end(t)
	return res, g.respond(cl, srv, t.Add(g.d(150*time.Microsecond, 0.3)), res)
}

// fraudCheck: payment-service → fraud-service (zipkin-go), behind a circuit
// breaker. While fraud-service is down its calls fail; after three failures
// in a row the breaker opens and calls fail fast without leaving the service.
func (g *generator) fraudCheck(ch *span, t time.Time, o *order, down bool) (outcome, time.Time) {
	state, allowed := g.breaker.allow()
	if !allowed {
		g.c.circuitOpen.Add(1)
		cb := g.payments.start(ch, "circuit_breaker fraud-service", internal, t,
			attribute.String("circuit_breaker.name", "fraud-service"),
			attribute.String("circuit_breaker.state", "open"))
		t = t.Add(g.d(25*time.Microsecond, 0.3))
		res := outcome{status: http.StatusServiceUnavailable, errType: "circuit_breaker_open",
			msg: "fraud check unavailable: circuit breaker fraud-service is open, failing fast"}
		cb.fail(t, res.errType, res.msg)
		cb.end(t)
		return res, t
	}

	cl, srv, st := g.rpc(ch, g.fraud, t, "POST /fraud/score",
		httpClientAttrs("POST", "fraud-service", 8080, "/fraud/score",
			attribute.String("url.template", "/fraud/score"),
			attribute.String("circuit_breaker.name", "fraud-service"),
			attribute.String("circuit_breaker.state", state)),
		"fraud.score", httpServerAttrs("POST", "/fraud/score", "/fraud/score"))
	srv.set(attribute.String("user.id", o.userID), attribute.Float64("payment.amount", o.amount))

	feat := g.fraud.start(srv, "HGETALL", client, st.Add(g.d(100*time.Microsecond, 0.3)),
		attribute.String("db.system", "redis"),
		attribute.String("db.operation.name", "HGETALL"),
		attribute.String("db.query.text", "HGETALL features:"+o.userID),
		attribute.String("server.address", "redis-features.shop.svc"),
		attribute.Int("server.port", 6379))
	feat.peer("redis")
	if down {
		g.c.fraudFailures.Add(1)
		st = feat.start.Add(g.d(3*time.Millisecond, 0.3))
		feat.fail(st, "connection_refused", "dial tcp 10.42.2.61:6379: connect: connection refused")
		feat.end(st)
		res := outcome{status: http.StatusServiceUnavailable, errType: "503",
			msg: "fraud-service: feature store unavailable"}
		g.breaker.record(false)
		return res, g.respond(cl, srv, st.Add(g.d(200*time.Microsecond, 0.3)), res)
	}
	st = feat.start.Add(g.d(800*time.Microsecond, 0.4))
	feat.end(st)
	score := math.Round(0.4*math.Pow(g.rng.Float64(), 3)*1000) / 1000
	model := g.fraud.start(srv, "fraud.model.evaluate", internal, st,
		attribute.String("fraud.model", "gbm-v7"), attribute.Float64("fraud.score", score))
	st = st.Add(g.d(4*time.Millisecond, 0.4))
	model.end(st)
	srv.set(attribute.Float64("fraud.score", score), attribute.String("fraud.decision", "approve"))
	g.breaker.record(true)
	return okOutcome, g.respond(cl, srv, st.Add(g.d(150*time.Microsecond, 0.3)), okOutcome)
}

// processorCharge is payment-service's call to the external payment
// processor, which has no tracing of its own.
func (g *generator) processorCharge(ch *span, t time.Time, o *order, decline bool) (outcome, time.Time) {
	pc := g.payments.start(ch, "POST /v1/charges", client, t,
		httpClientAttrs("POST", o.providerHost, 443, "/v1/charges", attribute.String("url.template", "/v1/charges"))...)
	pc.peer(o.provider)
	t = t.Add(g.d(180*time.Millisecond, 0.35))
	if decline {
		g.c.declines.Add(1)
		pc.set(attribute.Int("http.response.status_code", http.StatusPaymentRequired),
			attribute.String("payment.decline_code", o.declineCode))
		pc.fail(t, "402", "card declined: "+o.declineCode)
		pc.end(t)
		ch.set(attribute.String("payment.decline_code", o.declineCode))
		ch.event(t, "payment.declined", attribute.String("payment.decline_code", o.declineCode))
		return outcome{status: http.StatusPaymentRequired, errType: "card_declined",
			msg: "card declined: " + o.declineCode}, t
	}
	pc.set(attribute.Int("http.response.status_code", http.StatusOK), attribute.String("payment.transaction_id", o.txID))
	pc.end(t)
	ch.set(attribute.String("payment.transaction_id", o.txID))
	return okOutcome, t
}

// ledgerAppend: payment-service → ledger-service (zipkin-go), one
// transaction; on success ledger-service publishes ledger.entry_posted.
func (g *generator) ledgerAppend(ch *span, t time.Time, o *order, fail bool) (outcome, time.Time) {
	cl, srv, st := g.rpc(ch, g.ledger, t, "POST /ledger/entries",
		httpClientAttrs("POST", "ledger-service", 8080, "/ledger/entries", attribute.String("url.template", "/ledger/entries")),
		"ledger.append", httpServerAttrs("POST", "/ledger/entries", "/ledger/entries"))
	srv.set(attribute.String("order.id", o.id), attribute.String("payment.transaction_id", o.txID),
		attribute.Float64("payment.amount", o.amount), attribute.String("payment.currency", o.currency))
	st = g.db(srv, st.Add(g.d(100*time.Microsecond, 0.3)), "BEGIN", "", "BEGIN ISOLATION LEVEL SERIALIZABLE", 400*time.Microsecond, "")
	st = g.db(srv, st, "INSERT", "ledger_entries",
		"INSERT INTO ledger_entries (tx_id, account, direction, amount, currency) VALUES ($1, $2, $3, $4, $5), ($1, $6, $7, $4, $5)",
		3*time.Millisecond, "")
	if fail {
		st = g.db(srv, st, "UPDATE", "accounts", "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
			8*time.Millisecond, "ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)")
		st = g.db(srv, st, "ROLLBACK", "", "ROLLBACK", 500*time.Microsecond, "")
		res := outcome{status: http.StatusInternalServerError, errType: "serialization_failure",
			msg: "ledger append for " + o.txID + " rolled back: could not serialize access (SQLSTATE 40001)"}
		return res, g.respond(cl, srv, st.Add(g.d(150*time.Microsecond, 0.3)), res)
	}
	st = g.db(srv, st, "UPDATE", "accounts", "UPDATE accounts SET balance = balance + $1 WHERE id = $2", 2*time.Millisecond, "")
	st = g.db(srv, st, "COMMIT", "", "COMMIT", 1500*time.Microsecond, "")
	st = g.publish(srv, st, "ledger.entry_posted", o.txID, func(h http.Header, at time.Time) {
		c := g.notify.serve(h, "process ledger.entry_posted", consumer, at, messagingAttrs("ledger.entry_posted", "process", o.txID)...)
		c.set(attribute.String("messaging.consumer.group.name", "notification-service"))
		r := g.notify.start(c, "receipt.render", internal, at.Add(g.d(200*time.Microsecond, 0.3)),
			attribute.String("order.id", o.id), attribute.String("payment.transaction_id", o.txID))
		e := r.start.Add(g.d(6*time.Millisecond, 0.4))
		r.end(e)
		c.end(e.Add(g.d(300*time.Microsecond, 0.3)))
	})
	return okOutcome, g.respond(cl, srv, st.Add(g.d(150*time.Microsecond, 0.3)), okOutcome)
}

// refund is payment-service's compensating step when the ledger write fails.
func (g *generator) refund(ch *span, t time.Time, o *order) time.Time {
	g.c.sagas.Add(1)
	rf := g.payments.start(ch, "refund", internal, t,
		attribute.Bool("saga.compensation", true),
		attribute.String("saga.step", "refund_payment"),
		attribute.String("payment.transaction_id", o.txID),
		attribute.Float64("payment.amount", o.amount),
		attribute.String("payment.currency", o.currency))
	pc := g.payments.start(rf, "POST /v1/refunds", client, t.Add(g.d(100*time.Microsecond, 0.3)),
		httpClientAttrs("POST", o.providerHost, 443, "/v1/refunds", attribute.String("url.template", "/v1/refunds"))...)
	pc.peer(o.provider)
	e := pc.start.Add(g.d(150*time.Millisecond, 0.35))
	pc.set(attribute.Int("http.response.status_code", http.StatusOK))
	pc.end(e)
	e = e.Add(g.d(100*time.Microsecond, 0.3))
	rf.end(e)
	return e
}

// cancelOrder is order-service's compensation when the charge failed: the
// reservation is released and the order marked cancelled.
func (g *generator) cancelOrder(orderSrv *span, t time.Time, o *order, why outcome) time.Time {
	co := g.orders.start(orderSrv, "CancelOrder", internal, t,
		attribute.Bool("saga.compensation", true),
		attribute.String("saga.step", "cancel_order"),
		attribute.String("order.id", o.id),
		attribute.String("order.cancel_reason", why.errType))
	path := "/reservations/" + o.id
	cl, srv, st := g.rpc(co, g.inventory, t.Add(g.d(100*time.Microsecond, 0.3)), "DELETE /reservations/{id}",
		httpClientAttrs("DELETE", "inventory-service", 8080, path, attribute.String("url.template", "/reservations/{id}")),
		"DELETE /reservations/{id}", httpServerAttrs("DELETE", path, "/reservations/{id}"))
	st = g.db(srv, st, "DELETE", "reservations", "DELETE FROM reservations WHERE order_id = $1", 2*time.Millisecond, "")
	e := g.respond(cl, srv, st.Add(g.d(150*time.Microsecond, 0.3)), outcome{status: http.StatusNoContent})
	e = g.db(co, e, "UPDATE", "orders", "UPDATE orders SET status = 'cancelled', reason = $2 WHERE id = $1", 1500*time.Microsecond, "")
	co.end(e)
	return e
}

// publishOrderConfirmed: order-service → Kafka → notification-service.
func (g *generator) publishOrderConfirmed(orderSrv *span, t time.Time, o *order) time.Time {
	return g.publish(orderSrv, t, "order.confirmed", o.id, func(h http.Header, at time.Time) {
		c := g.notify.serve(h, "process order.confirmed", consumer, at, messagingAttrs("order.confirmed", "process", o.id)...)
		c.set(attribute.String("messaging.consumer.group.name", "notification-service"), attribute.String("user.id", o.userID))
		mail := g.notify.start(c, "POST /v3/mail/send", client, at.Add(g.d(300*time.Microsecond, 0.3)),
			httpClientAttrs("POST", "api.sendgrid.com", 443, "/v3/mail/send", attribute.String("url.template", "/v3/mail/send"))...)
		mail.peer("sendgrid")
		e := mail.start.Add(g.d(90*time.Millisecond, 0.4))
		mail.set(attribute.Int("http.response.status_code", http.StatusAccepted))
		mail.end(e)
		c.end(e.Add(g.d(300*time.Microsecond, 0.3)))
	})
}

func messagingAttrs(topic, op, key string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.destination.name", topic),
		attribute.String("messaging.operation.type", op),
		attribute.String("messaging.kafka.message.key", key),
	}
}

// publish sends one Kafka message from parent's service with the context in
// its headers; consume plays the consumer, some milliseconds later.
func (g *generator) publish(parent *span, t time.Time, topic, key string, consume func(h http.Header, at time.Time)) time.Time {
	p := parent.svc.start(parent, "publish "+topic, producer, t, messagingAttrs(topic, "send", key)...)
	p.peer("kafka")
	headers := http.Header{}
	p.inject(headers)
	e := t.Add(g.d(2*time.Millisecond, 0.4))
	p.end(e)
	consume(headers, e.Add(g.d(15*time.Millisecond, 0.6)))
	return e
}

func parseIP(s string) net.IP { return net.ParseIP(s).To4() }
