// Command omcheck parses a Prometheus exposition read from stdin with Prometheus' own
// scrape parser (model/textparse, the one a Prometheus server scrapes with) and prints
// one JSON object per sample: labels (the name as __name__), value, and exemplars. It
// fails, naming the line, on anything that parser refuses.
//
// It is a module of its own, so that the Prometheus server module is needed by the
// e2e tests that run it and never by spoor: go run . -content-type "$(curl -sI …)" < body
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

type sample struct {
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value"`
	Exemplars []sampleExemplar  `json:"exemplars,omitempty"`
}

type sampleExemplar struct {
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value"`
	Timestamp int64             `json:"timestamp_ms,omitempty"`
}

func main() {
	contentType := flag.String("content-type", "", "the Content-Type the exposition was served with")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *contentType); err != nil {
		fmt.Fprintln(os.Stderr, "omcheck:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, contentType string) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	p, err := textparse.New(b, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return fmt.Errorf("no parser for %q: %w", contentType, err)
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if entry != textparse.EntrySeries {
			continue
		}
		_, _, v := p.Series()
		var ls labels.Labels
		p.Labels(&ls)
		s := sample{Labels: ls.Map(), Value: v}
		var e exemplar.Exemplar
		for p.Exemplar(&e) {
			s.Exemplars = append(s.Exemplars, sampleExemplar{Labels: e.Labels.Map(), Value: e.Value, Timestamp: e.Ts})
			e = exemplar.Exemplar{}
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return w.Flush()
}
