package demo

import (
	"slices"
	"testing"
)

func planOf(seed int64, n int) (sc []scenario, down []bool) {
	p := newPlanner(seed)
	for range n {
		s, d := p.next()
		sc, down = append(sc, s), append(down, d)
	}
	return sc, down
}

func TestPlannerIsDeterministicAndCoversEveryFailure(t *testing.T) {
	const n = 10 * planBlock
	a, aDown := planOf(7, n)
	b, bDown := planOf(7, n)
	if !slices.Equal(a, b) || !slices.Equal(aDown, bDown) {
		t.Fatal("two planners with seed 7 disagree")
	}
	c, _ := planOf(8, n)
	if slices.Equal(a, c) {
		t.Error("seeds 7 and 8 give the same plan")
	}
	for _, seed := range []int64{0, 1, 7, 42, -3} {
		sc, down := planOf(seed, n)
		for blk := 0; blk < n/planBlock; blk++ {
			early := sc[blk*planBlock : blk*planBlock+planEarly]
			for _, want := range []scenario{scenarioDeclined, scenarioTimeout, scenarioSaga} {
				if !slices.Contains(early, want) {
					t.Errorf("seed %d block %d: no %s among its first %d traces", seed, blk, want, planEarly)
				}
			}
			if slices.Contains(down[blk*planBlock:blk*planBlock+planEarly], true) {
				t.Errorf("seed %d block %d: outage overlaps the guaranteed failures", seed, blk)
			}
			outage := 0
			for _, d := range down[blk*planBlock : (blk+1)*planBlock] {
				if d {
					outage++
				}
			}
			if blk%2 == 0 && outage < 6 || blk%2 == 1 && outage != 0 {
				t.Errorf("seed %d block %d: fraud-service down for %d traces", seed, blk, outage)
			}
		}
	}
}

func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	b := newBreaker()
	var got []string
	// fraud-service fails the first four calls that reach it, then recovers.
	reached := 0
	for range 20 {
		state, ok := b.allow()
		if !ok {
			got = append(got, "reject")
			continue
		}
		reached++
		healthy := reached > 4
		b.record(healthy)
		if healthy {
			got = append(got, state+":ok")
		} else {
			got = append(got, state+":fail")
		}
	}
	want := []string{
		"closed:fail", "closed:fail", "closed:fail", // three in a row open it
		"reject", "reject", "reject", "reject", "reject",
		"half_open:fail", // the trial fails: open again
		"reject", "reject", "reject", "reject", "reject",
		"half_open:ok", // the trial succeeds: closed
		"closed:ok", "closed:ok", "closed:ok", "closed:ok", "closed:ok",
	}
	if !slices.Equal(got, want) {
		t.Errorf("breaker went\n%v\nwant\n%v", got, want)
	}
}
