package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

type evalClass struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	Support   int     `json:"support"`
	Predicted int     `json:"predicted"`
}

type evalReport struct {
	Model    string      `json:"model"`
	Examples int         `json:"examples"`
	Correct  int         `json:"correct"`
	Accuracy float64     `json:"accuracy"`
	Classes  []evalClass `json:"classes"`
	// Confusion[i][j] counts examples of true label Rows[i] predicted as
	// the model's label Labels[j].
	Rows      []string `json:"rows"`
	Labels    []string `json:"labels"`
	Confusion [][]int  `json:"confusion"`
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", "--model M [--frontend P] [--labels L] --data DIR [--json]", stderr)
	modelPath := fs.String("model", "", "model to evaluate")
	frontendPath := fs.String("frontend", "", "audio feature frontend .tflite (needed for WAV examples)")
	labelsPath := fs.String("labels", "", "the model's labels (default: <model>_labels.txt beside it)")
	dataDir := fs.String("data", "", "directory of examples: DIR/<label>/*.wav (or images)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *dataDir == "" {
		return usagef("--model and --data are required")
	}
	if *labelsPath == "" {
		*labelsPath = strings.TrimSuffix(*modelPath, filepath.Ext(*modelPath)) + "_labels.txt"
		if _, err := os.Stat(*labelsPath); err != nil {
			return usagef("--labels not given and %s not found", *labelsPath)
		}
	}
	labels, err := pipeline.LoadLabels(*labelsPath)
	if err != nil {
		return err
	}
	model, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	files, err := listExamples(*dataDir)
	if err != nil {
		return err
	}
	classify, err := newEvalClassifier(model, *frontendPath, labels, files[0].audio)
	if err != nil {
		return err
	}

	rows := slices.Clone([]string(labels))
	for _, f := range files {
		if !slices.Contains(rows, f.label) {
			rows = append(rows, f.label)
		}
	}
	rep := evalReport{Model: *modelPath, Rows: rows, Labels: labels, Confusion: make([][]int, len(rows))}
	for i := range rep.Confusion {
		rep.Confusion[i] = make([]int, len(labels))
	}
	for _, f := range files {
		pred, err := classify(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		rep.Confusion[slices.Index(rows, f.label)][pred]++
		rep.Examples++
		if labels[pred] == f.label {
			rep.Correct++
		}
	}
	rep.Accuracy = float64(rep.Correct) / float64(rep.Examples)
	for j, l := range labels {
		c := evalClass{Label: l}
		if i := slices.Index(rows, l); i >= 0 {
			for _, v := range rep.Confusion[i] {
				c.Support += v
			}
			if c.Support > 0 {
				c.Recall = float64(rep.Confusion[i][j]) / float64(c.Support)
			}
			for r := range rows {
				c.Predicted += rep.Confusion[r][j]
			}
			if c.Predicted > 0 {
				c.Precision = float64(rep.Confusion[i][j]) / float64(c.Predicted)
			}
		}
		rep.Classes = append(rep.Classes, c)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	printEval(stdout, rep)
	return nil
}

func printEval(w io.Writer, rep evalReport) {
	width := 9
	for _, r := range rep.Rows {
		width = max(width, len(r)+1)
	}
	fmt.Fprintf(w, "%-*s %9s %9s %8s\n", width, "class", "precision", "recall", "support")
	for _, c := range rep.Classes {
		fmt.Fprintf(w, "%-*s %9.4f %9.4f %8d\n", width, c.Label, c.Precision, c.Recall, c.Support)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "confusion matrix (rows: true label, columns: predicted)\n%-*s", width, "")
	cell := 5
	for _, l := range rep.Labels {
		cell = max(cell, len(l)+1)
	}
	for _, l := range rep.Labels {
		fmt.Fprintf(w, " %*s", cell, l)
	}
	fmt.Fprintln(w)
	for i, r := range rep.Rows {
		fmt.Fprintf(w, "%-*s", width, r)
		for _, v := range rep.Confusion[i] {
			fmt.Fprintf(w, " %*d", cell, v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "examples: %d, correct: %d\n", rep.Examples, rep.Correct)
	fmt.Fprintf(w, "accuracy: %.4f\n", rep.Accuracy)
}

// newEvalClassifier returns a function giving the model's class for a file:
// for WAV clips, the keyword spotter's clip classification (as `edged kws`
// scores a file); for images, the preprocessed image's top class.
func newEvalClassifier(model *runtime.Model, frontendPath string, labels pipeline.Labels, audio bool) (func(string) (int, error), error) {
	if audio {
		if frontendPath == "" {
			return nil, usagef("WAV examples need --frontend (the audio feature model)")
		}
		frontend, err := runtime.LoadModelFile(frontendPath)
		if err != nil {
			return nil, err
		}
		ks, err := pipeline.NewKeywordSpotter(frontend, model, pipeline.KeywordConfig{Labels: labels})
		if err != nil {
			return nil, err
		}
		return func(path string) (int, error) {
			pcm, _, err := sensors.ReadWAVFile(path, 16000)
			if err != nil {
				return 0, err
			}
			res, err := classifyFile(ks, pcm, labels)
			if err != nil {
				return 0, err
			}
			return labels.Index(res.Label), nil
		}, nil
	}
	it, err := runtime.NewInterpreter(model, nil)
	if err != nil {
		return nil, err
	}
	in, out := it.Inputs()[0], it.Outputs()[0]
	if out.NumElements() != len(labels) {
		return nil, fmt.Errorf("%d labels for a model with %d outputs", len(labels), out.NumElements())
	}
	pre, err := pipeline.NewPreprocessor(pipeline.SpecOf(in), pipeline.PreprocessOptions{})
	if err != nil {
		return nil, err
	}
	var frame *sensors.Frame
	return func(path string) (int, error) {
		frame, err = decodeImageFile(path, frame)
		if err != nil {
			return 0, err
		}
		if _, err := pre.ProcessTensor(frame, in); err != nil {
			return 0, err
		}
		if err := it.Invoke(); err != nil {
			return 0, err
		}
		top, err := pipeline.TopK(pipeline.DataOf(out), 1, nil)
		if err != nil || len(top) == 0 {
			return 0, fmt.Errorf("no score: %v", err)
		}
		return top[0].Index, nil
	}, nil
}
