package runtime

import "sort"

// arenaAlignment is the alignment of every tensor and scratch buffer in the
// arena (TFLM's kBufferAlignment): enough for any element type and for SIMD
// loads.
const arenaAlignment = 16

// allocation is one buffer the planner places: alive from operator first to
// operator last, inclusive.
type allocation struct {
	size        int
	first, last int
	offset      int
	id          int // order of request, for a deterministic layout
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

// planGreedyBySize places allocations in one arena the way TFLM's
// GreedyMemoryPlanner does: largest first, each at the lowest offset where it
// overlaps no already placed buffer whose lifetime it shares. It returns the
// arena size.
func planGreedyBySize(allocs []*allocation) int {
	order := make([]*allocation, len(allocs))
	copy(order, allocs)
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].size != order[j].size {
			return order[i].size > order[j].size
		}
		return order[i].id < order[j].id
	})
	var placed []*allocation // kept sorted by offset
	total := 0
	for _, a := range order {
		size := alignUp(a.size, arenaAlignment)
		offset := 0
		for _, p := range placed {
			if p.last < a.first || p.first > a.last {
				continue // lifetimes do not overlap
			}
			if p.offset >= offset+size {
				break // the gap before p is big enough
			}
			if end := p.offset + alignUp(p.size, arenaAlignment); end > offset {
				offset = end
			}
		}
		a.offset = offset
		i := sort.Search(len(placed), func(i int) bool { return placed[i].offset > offset })
		placed = append(placed, nil)
		copy(placed[i+1:], placed[i:])
		placed[i] = a
		if end := offset + size; end > total {
			total = end
		}
	}
	return total
}
