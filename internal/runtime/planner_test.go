package runtime

import (
	"math/rand/v2"
	"testing"
)

func TestPlanGreedyBySizeNeverOverlapsLiveBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for round := range 500 {
		n := 1 + rng.IntN(40)
		allocs := make([]*allocation, n)
		for i := range allocs {
			first := rng.IntN(30)
			allocs[i] = &allocation{size: rng.IntN(5000), first: first, last: first + rng.IntN(6), id: i}
		}
		total := planGreedyBySize(allocs)
		peak := 0
		for step := range 36 {
			live := 0
			for _, a := range allocs {
				if a.first <= step && step <= a.last {
					live += alignUp(a.size, arenaAlignment)
				}
			}
			peak = max(peak, live)
		}
		if total < peak {
			t.Fatalf("round %d: arena %d smaller than the live peak %d", round, total, peak)
		}
		for i, a := range allocs {
			if a.offset%arenaAlignment != 0 || a.offset+a.size > total {
				t.Fatalf("round %d: buffer %d at %d+%d outside arena %d or misaligned", round, i, a.offset, a.size, total)
			}
			for j, b := range allocs[:i] {
				timeOverlap := a.first <= b.last && b.first <= a.last
				spaceOverlap := a.offset < b.offset+b.size && b.offset < a.offset+a.size
				if timeOverlap && spaceOverlap && a.size > 0 && b.size > 0 {
					t.Fatalf("round %d: buffers %d and %d are live together and overlap", round, i, j)
				}
			}
		}
	}
}

func TestPlanGreedyBySizeReusesMemory(t *testing.T) {
	// A chain a->b->c->d where each tensor dies after the next op: only two
	// are alive at once, so the arena holds the two largest neighbours.
	allocs := []*allocation{
		{size: 1000, first: 0, last: 1, id: 0},
		{size: 800, first: 1, last: 2, id: 1},
		{size: 1000, first: 2, last: 3, id: 2},
		{size: 800, first: 3, last: 4, id: 3},
	}
	if got := planGreedyBySize(allocs); got != alignUp(1000, 16)+alignUp(800, 16) {
		t.Errorf("chain arena %d, want %d", got, alignUp(1000, 16)+alignUp(800, 16))
	}
}
