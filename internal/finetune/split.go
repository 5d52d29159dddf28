package finetune

import (
	"math"
	"math/rand/v2"
	"slices"
)

// minValPerClass is the fewest examples a class needs before some of them
// are held out for validation.
const minValPerClass = 20

// splitByGroup marks examples for validation: about frac of every class
// with at least minValPerClass examples, whole groups at a time (a group is
// a speaker or a recording session: its examples are alike, and a model
// that saw one of them in training would look better on the others than on
// a new voice). Groups are visited in a seeded random order; a group goes
// to validation while no class it holds would exceed its quota.
func splitByGroup(labels []int, groups []string, classes int, frac float64, seed uint64) []bool {
	isVal := make([]bool, len(labels))
	if frac <= 0 {
		return isVal
	}
	counts := make([]int, classes)
	for _, l := range labels {
		counts[l]++
	}
	quota := make([]int, classes)
	for c, n := range counts {
		if n >= minValPerClass {
			quota[c] = int(math.Round(frac * float64(n)))
		}
	}
	members := map[string][]int{}
	for i, g := range groups {
		members[g] = append(members[g], i)
	}
	names := make([]string, 0, len(members))
	for g := range members {
		names = append(names, g)
	}
	slices.Sort(names)
	rng := rand.New(rand.NewPCG(seed, 0x73706c6974))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	taken := make([]int, classes)
	need := make([]int, classes)
	for _, g := range names {
		clear(need)
		for _, i := range members[g] {
			need[labels[i]]++
		}
		fits, useful := true, false
		for c, n := range need {
			if n == 0 {
				continue
			}
			if taken[c]+n > quota[c] {
				fits = false
				break
			}
			useful = true
		}
		if !fits || !useful {
			continue
		}
		for c, n := range need {
			taken[c] += n
		}
		for _, i := range members[g] {
			isVal[i] = true
		}
	}
	return isVal
}
