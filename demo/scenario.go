package demo

import "math/rand/v2"

// scenario is what goes wrong in one checkout, decided before it is played.
type scenario uint8

const (
	scenarioOK       scenario = iota
	scenarioDeclined          // the processor declines the card
	scenarioTimeout           // the inventory call times out once and is retried
	scenarioSaga              // the ledger write fails; refund and CancelOrder compensate
)

func (s scenario) String() string {
	switch s {
	case scenarioOK:
		return "ok"
	case scenarioDeclined:
		return "card_declined"
	case scenarioTimeout:
		return "timeout_retry"
	case scenarioSaga:
		return "saga_compensation"
	}
	return "unknown"
}

// planBlock is the number of traces over which the planner guarantees one of
// each failure. Each kind is placed within the first planEarly traces of a
// block, so a run of a few seconds at a modest rate shows all of them.
const (
	planBlock = 50
	planEarly = 20
)

// planner decides, from the seed alone, what each trace plays and when
// fraud-service is down. Every block of planBlock traces holds one decline,
// one timeout and one saga at seeded places among its first planEarly
// traces, a few more failures at random, and every other block a
// fraud-service outage long enough to open payment-service's breaker.
type planner struct {
	rng   *rand.Rand
	n     int // traces planned so far
	block [planBlock]scenario
	// fraud-service is down for traces [outageFrom, outageTo) of the block.
	outageFrom, outageTo int
}

func newPlanner(seed int64) *planner {
	return &planner{rng: rand.New(rand.NewPCG(uint64(seed), 0x5b00_7ace))}
}

// next returns the scenario of the next trace and whether fraud-service is
// down while it runs.
func (p *planner) next() (scenario, bool) {
	i := p.n % planBlock
	if i == 0 {
		p.planBlock(p.n / planBlock)
	}
	p.n++
	return p.block[i], i >= p.outageFrom && i < p.outageTo
}

func (p *planner) planBlock(b int) {
	p.block = [planBlock]scenario{}
	// Trace 0 of a block is always healthy, so a run's first trace is a
	// typical one to compare failures against.
	pos := p.rng.Perm(planEarly - 1)
	p.block[1+pos[0]] = scenarioDeclined
	p.block[1+pos[1]] = scenarioTimeout
	p.block[1+pos[2]] = scenarioSaga
	p.outageFrom, p.outageTo = 0, 0
	if b%2 == 0 {
		p.outageFrom = planEarly + p.rng.IntN(6)
		p.outageTo = p.outageFrom + 6 + p.rng.IntN(4)
	}
	for i := planEarly; i < planBlock; i++ {
		switch r := p.rng.Float64(); {
		case r < 0.03:
			p.block[i] = scenarioDeclined
		case r < 0.05:
			p.block[i] = scenarioTimeout
		case r < 0.06:
			p.block[i] = scenarioSaga
		}
	}
}

// breaker is payment-service's circuit breaker in front of fraud-service.
// It counts calls rather than seconds so that, like everything else in a
// demo run, its behaviour depends on the seed and not on the rate.
type breaker struct {
	state     string // "closed", "open" or "half_open"
	failures  int    // consecutive failures while closed
	rejected  int    // calls failed fast since it opened
	threshold int    // consecutive failures that open it
	openCalls int    // calls failed fast before a half-open trial
}

func newBreaker() *breaker {
	return &breaker{state: "closed", threshold: 3, openCalls: 5}
}

// allow says whether a call may go out, and the state it goes out in.
func (b *breaker) allow() (string, bool) {
	if b.state == "open" {
		if b.rejected < b.openCalls {
			b.rejected++
			return "open", false
		}
		b.state = "half_open"
	}
	return b.state, true
}

// record feeds back the outcome of a call that allow let through.
func (b *breaker) record(ok bool) {
	switch {
	case ok:
		b.state, b.failures = "closed", 0
	case b.state == "half_open":
		b.state, b.rejected = "open", 0
	default:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.rejected, b.failures = "open", 0, 0
		}
	}
}
