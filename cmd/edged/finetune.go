package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edged/edged/internal/finetune"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

const finetuneSynopsis = "--model M [--frontend P] --data DIR --out NEW.tflite [--labels-out L] [--epochs N] [--seed S] [--mode imprint|head|deep] [--base-labels L] [--json]"

func runFinetune(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("finetune", finetuneSynopsis, stderr)
	modelPath := fs.String("model", "", "model to fine-tune (.tflite with an int8 FULLY_CONNECTED head)")
	frontendPath := fs.String("frontend", "", "audio feature frontend .tflite (needed for WAV examples)")
	dataDir := fs.String("data", "", "directory of examples: DIR/<label>/*.wav (or images)")
	outPath := fs.String("out", "", "where to write the new model")
	labelsOut := fs.String("labels-out", "", "where to write its labels (default: beside --out, <name>_labels.txt)")
	epochs := fs.Int("epochs", 0, "most training epochs (default 40, deep 30; early stopping usually ends sooner)")
	seed := fs.Uint64("seed", 1, "random seed: the same data, flags and seed give the same model")
	modeName := fs.String("mode", "", "imprint (no training), head (train a new head) or deep (also the layer before it); default deep for audio when every class has examples, else head")
	baseLabels := fs.String("base-labels", "", "labels of the model's current classes: keep them when --data has no examples of some (extend mode)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	valFraction := fs.Float64("val-fraction", 0, "share of the examples held out (by speaker) for early stopping and the check (default 0.2; negative: none)")
	segments := fs.Int("segments", 0, "pool the embedding over this many time segments (default 1 for audio; -1: no pooling)")
	copies := fs.Int("augment", 0, "augmented views per training clip (default 8; -1: none)")
	lr := fs.Float64("lr", 0, "learning rate (default 0.001)")
	negatives := fs.Float64("negatives", 0, "extend mode: synthesized negatives per training view of the new classes (default 3; -1: none)")
	targetRecall := fs.Float64("target-recall", 0, "extend mode: the held-out recall each new class's bias is set for (default 0.7; -1: off)")
	baseWeight := fs.Float64("base-weight", 0, "loss weight of the current classes (but unknown) when all are retrained (default 2)")
	baseMargin := fs.Float64("base-margin", 0, "logits added to the current keywords' biases when all classes are retrained, so new words take less from them (default 0.5; -1: none)")
	minAcc := fs.Float64("min-accuracy", 0, "lowest int8 validation accuracy the check accepts (default 1.5/classes)")
	stride := fs.Duration("stride", 20*time.Millisecond, "hop between audio feature frames")
	workers := fs.Int("workers", 0, "goroutines computing embeddings (default GOMAXPROCS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *dataDir == "" || *outPath == "" {
		return usagef("--model, --data and --out are required")
	}
	var mode finetune.Mode
	if *modeName != "" {
		m, err := finetune.ParseMode(*modeName)
		if err != nil {
			return usagef("--mode: %v", err)
		}
		mode = m
	}
	if *epochs < 0 {
		return usagef("--epochs must not be negative")
	}
	if *labelsOut == "" {
		*labelsOut = strings.TrimSuffix(*outPath, filepath.Ext(*outPath)) + "_labels.txt"
	}
	opts := finetune.Options{Mode: mode, Epochs: *epochs, Seed: *seed, ValFraction: *valFraction, Segments: *segments,
		LearningRate: *lr, Negatives: *negatives, TargetRecall: *targetRecall, BaseWeight: *baseWeight, BaseMargin: *baseMargin, MinAccuracy: *minAcc, Workers: *workers, Stride: int(*stride * 16000 / time.Second)}
	if *copies != 0 {
		opts.Augment = finetune.DefaultAugment
		opts.Augment.Copies = *copies
	}
	if *baseLabels != "" {
		l, err := pipeline.LoadLabels(*baseLabels)
		if err != nil {
			return err
		}
		opts.BaseLabels = l
	}
	base, err := os.ReadFile(*modelPath)
	if err != nil {
		return err
	}
	model, err := runtime.LoadModel(base)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	var frontend *runtime.Model
	if *frontendPath != "" {
		if frontend, err = runtime.LoadModelFile(*frontendPath); err != nil {
			return err
		}
	}
	data, err := loadExamples(*dataDir, model, frontend)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bar := newProgressPrinter(stderr)
	opts.Progress = bar.update
	res, err := finetune.Run(ctx, base, data, opts)
	bar.finish()
	if err != nil {
		if res != nil && errors.Is(err, finetune.ErrCheck) {
			printFinetuneReport(stdout, res.Report, *asJSON)
		}
		return err
	}
	if err := writeFileAtomic(*outPath, res.Model); err != nil {
		return err
	}
	if err := writeFileAtomic(*labelsOut, []byte(strings.Join(res.Labels, "\n")+"\n")); err != nil {
		return err
	}
	printFinetuneReport(stdout, res.Report, *asJSON)
	if !*asJSON {
		fmt.Fprintf(stdout, "wrote %s (%d bytes) and %s\n", *outPath, len(res.Model), *labelsOut)
	}
	return nil
}

func printFinetuneReport(w io.Writer, r finetune.Report, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(r)
		return
	}
	fmt.Fprintf(w, "labels:     %s", strings.Join(r.Labels, " "))
	switch {
	case r.Frozen > 0 && r.FrozenExact:
		fmt.Fprintf(w, " (first %d kept bit for bit)", r.Frozen)
	case r.Frozen > 0:
		fmt.Fprintf(w, " (first %d kept: same int8 weights and biases; the logits' range widened for the new classes)", r.Frozen)
	}
	fmt.Fprintln(w)
	pool := "none"
	if r.Segments > 0 {
		pool = fmt.Sprintf("%d time segment(s)", r.Segments)
	}
	fmt.Fprintf(w, "mode:       %s, pooling %s\n", r.Mode, pool)
	fmt.Fprintf(w, "examples:   %d train (%d views, %d synthesized negatives), %d validation\n", r.TrainExamples, r.TrainViews, r.Negatives, r.ValExamples)
	if r.Epochs > 0 {
		epochs := fmt.Sprintf("%d epochs (best %d)", r.Epochs, r.BestEpoch)
		if r.LayerEpochs > 0 {
			epochs = fmt.Sprintf("%d epochs: %d layer + head (best %d, %.2f s CPU each), %d head", r.Epochs, r.LayerEpochs, r.BestEpoch, r.LayerCPUPerEpoch, r.Epochs-r.LayerEpochs)
		}
		fmt.Fprintf(w, "training:   %s, %.3f s/epoch (%.3f s CPU)\n", epochs, r.SecondsPerEpoch, r.CPUPerEpoch)
	}
	for _, l := range r.Labels {
		if b, ok := r.BaseBias[l]; ok {
			fmt.Fprintf(w, "keep:       %s bias raised by %.3f to keep its recall\n", l, b)
		}
	}
	fmt.Fprintf(w, "time:       embeddings %.1f s, training %.1f s, check %.1f s (CPU %.1f, %.1f, %.1f s); peak heap %.1f MB\n",
		r.EmbedSeconds, r.TrainSeconds, r.CheckSeconds, r.EmbedCPU, r.TrainCPU, r.CheckCPU, float64(r.PeakHeapBytes)/(1<<20))
	if r.ValExamples > 0 {
		fmt.Fprintf(w, "validation: float %.4f, int8 %.4f\n", r.FloatValAccuracy, r.Int8ValAccuracy)
	}
	fmt.Fprintf(w, "check:      int8 agrees with the float head on %.2f%% of %d examples; int8 train accuracy %.4f\n", 100*r.Agreement, r.Checked, r.Int8TrainAcc)
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// reader never sees half a model.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var imageExts = []string{".png", ".jpg", ".jpeg", ".bmp"}

// exampleFile is one file of a labelled example directory.
type exampleFile struct {
	path, label, group string
	audio              bool
}

// listExamples reads DIR/<label>/<file>: WAV files or images, sorted by
// label and name. The group of a file named like Speech Commands'
// "<speaker>_nohash_<n>.wav" is its speaker.
func listExamples(dir string) ([]exampleFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []exampleFile
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			ext := strings.ToLower(filepath.Ext(f.Name()))
			isAudio := ext == ".wav"
			if !isAudio && !slices.Contains(imageExts, ext) {
				continue
			}
			group := ""
			if i := strings.Index(f.Name(), "_nohash_"); i > 0 {
				group = f.Name()[:i]
			}
			out = append(out, exampleFile{path: filepath.Join(dir, e.Name(), f.Name()), label: e.Name(), group: group, audio: isAudio})
		}
	}
	if len(out) == 0 {
		return nil, usagef("%s holds no <label>/*.wav or image files", dir)
	}
	audio := out[0].audio
	for _, f := range out {
		if f.audio != audio {
			return nil, usagef("%s mixes WAV files and images", dir)
		}
	}
	return out, nil
}

// loadExamples reads a labelled directory: WAV clips at 16 kHz for audio
// models (with frontend), or images preprocessed into the model's input.
func loadExamples(dir string, model *runtime.Model, frontend *runtime.Model) (finetune.Data, error) {
	files, err := listExamples(dir)
	if err != nil {
		return finetune.Data{}, err
	}
	var data finetune.Data
	if files[0].audio {
		if frontend == nil {
			return data, usagef("WAV examples need --frontend (the audio feature model)")
		}
		data.Frontend = frontend
		for _, f := range files {
			pcm, _, err := sensors.ReadWAVFile(f.path, 16000)
			if err != nil {
				return data, err
			}
			data.Clips = append(data.Clips, finetune.Clip{Name: f.path, Label: f.label, Group: f.group, PCM: pcm})
		}
		return data, nil
	}
	info := &model.Subgraphs[0].Tensors[model.Subgraphs[0].Inputs[0]]
	pre, err := pipeline.NewPreprocessor(pipeline.SpecOfInfo(info), pipeline.PreprocessOptions{})
	if err != nil {
		return data, err
	}
	var frame *sensors.Frame
	for _, f := range files {
		frame, err = decodeImageFile(f.path, frame)
		if err != nil {
			return data, err
		}
		buf := make([]byte, pre.InputBytes())
		if _, err := pre.Process(frame, buf); err != nil {
			return data, fmt.Errorf("%s: %w", f.path, err)
		}
		input := make([]int8, len(buf))
		for i, b := range buf {
			input[i] = int8(b)
		}
		data.Examples = append(data.Examples, finetune.Example{Name: f.path, Label: f.label, Group: f.group, Input: input})
	}
	return data, nil
}

func decodeImageFile(path string, reuse *sensors.Frame) (*sensors.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return reuse, err
	}
	defer f.Close()
	return sensors.DecodeImage(f, path, reuse)
}

// progressPrinter shows fine-tuning progress on stderr: a bar redrawn in
// place on a terminal, a plain line now and then otherwise.
type progressPrinter struct {
	w        io.Writer
	tty      bool
	stage    string
	lastLine time.Time
	drawn    bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = isTerminal(f)
	}
	return p
}

func (p *progressPrinter) update(pr finetune.Progress) {
	line := ""
	switch pr.Stage {
	case "train":
		line = fmt.Sprintf("epoch %d/%d  loss %.4f", pr.Done, pr.Total, pr.TrainLoss)
		if pr.ValLoss > 0 {
			line += fmt.Sprintf("  val loss %.4f  val acc %.3f", pr.ValLoss, pr.ValAccuracy)
		}
	default:
		line = fmt.Sprintf("%d/%d", pr.Done, pr.Total)
	}
	if p.tty {
		const width = 30
		n := 0
		if pr.Total > 0 {
			n = min(width, width*pr.Done/pr.Total)
		}
		if p.drawn && pr.Stage != p.stage {
			fmt.Fprintln(p.w)
		}
		fmt.Fprintf(p.w, "\r\x1b[K%-6s [%s%s] %s", pr.Stage, strings.Repeat("#", n), strings.Repeat(".", width-n), line)
		p.drawn, p.stage = true, pr.Stage
		return
	}
	// Plain: every epoch; other stages at most every 5 s and at the end.
	now := time.Now()
	if pr.Stage == "train" || pr.Done == pr.Total || now.Sub(p.lastLine) >= 5*time.Second {
		fmt.Fprintf(p.w, "finetune: %s %s\n", pr.Stage, line)
		p.lastLine = now
	}
	p.stage = pr.Stage
}

func (p *progressPrinter) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
