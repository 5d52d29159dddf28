package finetune

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testenv"
)

// The validation protocol that chose the defaults: cross-validation on
// kws-synth/train alone (test/ is never read), in folds by voice that
// mimic the train/test split. kws-synth names a clip
// <accent>[_<variant>]_nohash_<n>.wav; each fold holds out about a fifth
// of the variants (with every accent they were spoken in), so no held-out
// voice, and no held-out variant, is heard in training; silence clips are
// dealt to the folds in turn. Every clip is held out once per seed; the
// pooled predictions give accuracy and per-class recall.
//
//	EDGED_TUNE=base,bw2 EDGED_TUNE_SEEDS=1,2,3 go test ./internal/finetune -run TestKWSSynthCV -v -timeout 0
//
// Candidates that share the embeddings (same mode, augmentation, seed and
// fold) are trained on one set of them.

// tuneCandidate is one configuration under validation.
type tuneCandidate struct {
	name string
	set  func(o *Options)
}

var tuneCandidates = []tuneCandidate{
	{"base", func(o *Options) {}},
	{"bw1", func(o *Options) { o.BaseWeight = 1 }},
	{"bw1.5", func(o *Options) { o.BaseWeight = 1.5 }},
	{"bw3", func(o *Options) { o.BaseWeight = 3 }},
	{"margin0", func(o *Options) { o.BaseMargin = -1 }},
	{"margin0.25", func(o *Options) { o.BaseMargin = 0.25 }},
	{"margin1", func(o *Options) { o.BaseMargin = 1 }},
	{"margin1.5", func(o *Options) { o.BaseMargin = 1.5 }},
	{"bw1+margin0", func(o *Options) { o.BaseWeight = 1; o.BaseMargin = -1 }},
	{"lr2x", func(o *Options) { o.LearningRate = 0.002 }},
	{"lr0.5x", func(o *Options) { o.LearningRate = 0.0005 }},
	{"ls0", func(o *Options) { o.LabelSmoothing = -1 }},
	{"ls0.2", func(o *Options) { o.LabelSmoothing = 0.2 }},
	{"pat12", func(o *Options) { o.Patience = 12; o.Epochs = 80 }},
	{"ep80", func(o *Options) { o.Epochs = 80 }},
	{"seg2", func(o *Options) { o.Segments = 2 }},
	{"seg3", func(o *Options) { o.Segments = 3 }},
	{"wd0.1", func(o *Options) { o.WeightDecay = 0.1 }},
	{"nokeep", func(o *Options) { o.NoKeepBase = true }},
	{"aug4", func(o *Options) { o.Augment.Copies = 4 }},
	{"aug16", func(o *Options) { o.Augment.Copies = 16 }},
	{"speed0.15", func(o *Options) { o.Augment.Speed = 0.15 }},
	{"speed0.35", func(o *Options) { o.Augment.Speed = 0.35 }},
	{"noise0.8", func(o *Options) { o.Augment.NoiseProb = 0.8 }},
	{"mask", func(o *Options) { o.Augment.FreqMask = 5; o.Augment.TimeMask = 8 }},
}

// tuneFolds deals train clips to folds by variant (silence by turn).
func tuneFolds(clips []Clip, folds int) []int {
	count := map[string]int{}
	variantOf := make([]string, len(clips))
	silence := 0
	for i, c := range clips {
		if slices.Contains(noiseLabels, c.Label) {
			variantOf[i] = fmt.Sprintf("\x00silence %d", silence%folds)
			silence++
			continue
		}
		v := "(none)"
		if k := strings.Index(c.Group, "_"); k >= 0 {
			v = c.Group[k+1:]
		}
		variantOf[i] = v
		count[v]++
	}
	var names []string
	for v := range count {
		names = append(names, v)
	}
	sort.Strings(names)
	rng := rand.New(rand.NewPCG(42, 7))
	rng.Shuffle(len(names), func(a, b int) { names[a], names[b] = names[b], names[a] })
	sort.SliceStable(names, func(a, b int) bool { return count[names[a]] > count[names[b]] })
	size := make([]int, folds)
	foldOf := map[string]int{}
	for _, v := range names {
		f := 0
		for k := range folds {
			if size[k] < size[f] {
				f = k
			}
		}
		foldOf[v] = f
		size[f] += count[v]
	}
	out := make([]int, len(clips))
	for i, v := range variantOf {
		if strings.HasPrefix(v, "\x00silence ") {
			out[i], _ = strconv.Atoi(strings.TrimPrefix(v, "\x00silence "))
		} else {
			out[i] = foldOf[v]
		}
	}
	return out
}

// cloneJob makes a job that trains again on a prepared job's embeddings
// with other training options.
func cloneJob(t testing.TB, j0 *job, o Options) *job {
	o, err := o.withDefaults(j0.data)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode == "" {
		o.Mode = j0.opts.Mode
		o.epochDefault()
	}
	j := *j0
	j.opts = o
	j.views = slices.Clone(j0.views)
	for i := range j.views {
		j.views[i].embed = slices.Clone(j0.views[i].embed)
	}
	j.report = j0.report
	return &j
}

func embedKey(o Options) string {
	return fmt.Sprint(o.Mode, o.Augment, o.ValFraction, o.Negatives)
}

func TestKWSSynthCV(t *testing.T) {
	spec := os.Getenv("EDGED_TUNE")
	if spec == "" {
		t.Skip("set EDGED_TUNE to candidate names (see tuneCandidates) to run the validation")
	}
	mode := Mode(os.Getenv("EDGED_TUNE_MODE"))
	seeds := []uint64{1, 2, 3}
	if s := os.Getenv("EDGED_TUNE_SEEDS"); s != "" {
		seeds = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, n)
		}
	}
	folds := 5
	var cands []tuneCandidate
	for _, name := range strings.Split(spec, ",") {
		i := slices.IndexFunc(tuneCandidates, func(c tuneCandidate) bool { return c.name == name })
		if i < 0 {
			t.Fatalf("unknown candidate %q", name)
		}
		cands = append(cands, tuneCandidates[i])
	}
	k := loadKWS(t)
	dir := filepath.Join(testenv.SharedFile(t, "kws-synth"), "train")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, e := range entries {
		if e.IsDir() {
			labels = append(labels, e.Name())
		}
	}
	clips := kwsClips(t, dir, labels, 0)
	foldOf := tuneFolds(clips, folds)
	out := os.Stdout
	if p := os.Getenv("EDGED_TUNE_OUT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = f
	}
	type tally struct{ hits, totals map[string]int }
	for _, seed := range seeds {
		res := make([]tally, len(cands))
		for i := range res {
			res[i] = tally{map[string]int{}, map[string]int{}}
		}
		cpu := make([]float64, len(cands))
		for f := range folds {
			var train, held []Clip
			for i, c := range clips {
				if foldOf[i] == f {
					held = append(held, c)
				} else {
					train = append(train, c)
				}
			}
			var j0 *job
			key := ""
			for ci, c := range cands {
				o := Options{Mode: mode, Seed: seed, BaseLabels: k.labels}
				c.set(&o)
				od, err := o.withDefaults(Data{Frontend: k.frontend, Clips: train})
				if err != nil {
					t.Fatal(err)
				}
				start := cpuSeconds()
				if j0 == nil || embedKey(od) != key {
					j0, err = prepare(context.Background(), k.raw, Data{Frontend: k.frontend, Clips: train}, o)
					if err != nil {
						t.Fatal(err)
					}
					key = embedKey(od)
				}
				j := cloneJob(t, j0, o)
				r, err := j.complete()
				if err != nil {
					t.Fatalf("%s seed %d fold %d: %v", c.name, seed, f, err)
				}
				cpu[ci] += cpuSeconds() - start
				pred := predictClips(t, r.Model, k.frontend, r.Labels, held)
				for i, cl := range held {
					res[ci].totals[cl.Label]++
					if pred[i] == cl.Label {
						res[ci].hits[cl.Label]++
					}
				}
			}
		}
		for ci, c := range cands {
			n, ok := 0, 0
			for l, v := range res[ci].totals {
				n += v
				ok += res[ci].hits[l]
			}
			rec := func(l string) float64 { return float64(res[ci].hits[l]) / float64(res[ci].totals[l]) }
			line := fmt.Sprintf("cv %-6s %-10s seed %d  acc %.4f  yes %.3f  no %.3f  silence %.3f  unknown %.3f  (train cpu %.0f s)  %s",
				mode, c.name, seed, float64(ok)/float64(n), rec("yes"), rec("no"), rec("silence"), rec("unknown"), cpu[ci], time.Now().Format("15:04:05"))
			fmt.Fprintln(out, line)
			t.Log(line)
		}
	}
}
