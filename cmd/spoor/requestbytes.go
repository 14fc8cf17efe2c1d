package main

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/spoortrace/spoor/analytics"
	"github.com/spoortrace/spoor/ingest"
	"github.com/spoortrace/spoor/sampler"
	"github.com/spoortrace/spoor/storage/storageexporter"
)

// The sampler's tail stage may copy the spans it holds out of the bytes of the request
// they came in, instead of encoding them again (sampler tail.hold_request_bytes,
// internal/otlpbody), only when the spans it is handed are what the receiver decoded:
// when nothing between the receiver and the sampler changes spans. Whether that holds
// is a property of the pipelines, which no component sees, so spoor works it out from
// the final config (whichever file or flags it came from) and sets the option on every
// spoor_sampler: true when, in every traces pipeline that lists it, only processors known
// never to change spans come before it and every receiver of the pipeline is a receiver
// rather than a connector (a connector's spans went through another pipeline, whose
// processors may have changed them, while the context still carries the request's
// bytes); false otherwise, whatever the config said. A config can turn it off
// (hold_request_bytes: false), never on where the pipelines do not allow it.
//
// The same goes for the storage exporter's use_request_bytes (a block stored as the
// request's bytes instead of encoded again), except that the sampler may come before it
// too: the exporter checks that the bytes still encode its batch span for span (IDs and
// tracestates), which catches all the sampler changes.

// unchangingProcessors are the processor types that never change a span.
var unchangingProcessors = map[component.Type]bool{
	ingest.ProcessorType: true, // validates and admits; refuses a request whole or passes it on untouched
	analytics.Type:       true, // counts, and never changes a span (its Capabilities say MutatesData false)
}

const (
	holdRequestBytesKey = "tail::hold_request_bytes"
	useRequestBytesKey  = "use_request_bytes"
)

func holdRequestBytesConverter() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter {
		return converterFunc(setHoldRequestBytes)
	})
}

type converterFunc func(*confmap.Conf) error

func (f converterFunc) Convert(_ context.Context, conf *confmap.Conf) error { return f(conf) }

// setHoldRequestBytes sets tail.hold_request_bytes on every spoor_sampler processor, and
// use_request_bytes on every spoor_storage exporter, of conf from the pipelines that
// list it.
func setHoldRequestBytes(conf *confmap.Conf) error {
	allowed := map[string]bool{}       // sampler ID → every pipeline allows it
	exportAllowed := map[string]bool{} // spoor_storage exporter ID → every pipeline allows it
	pipelines, _ := conf.Get("service::pipelines").(map[string]any)
	for name, p := range pipelines {
		id := component.ID{}
		if err := id.UnmarshalText([]byte(name)); err != nil || id.Type().String() != "traces" {
			continue // the collector reports a bad pipeline ID itself
		}
		pm, _ := p.(map[string]any)
		receiversOnly := true
		for _, r := range asStrings(pm["receivers"]) {
			if !conf.IsSet("receivers::"+r) && conf.IsSet("connectors::"+r) {
				receiversOnly = false
			}
		}
		unchanged, storable := receiversOnly, receiversOnly
		for _, proc := range asStrings(pm["processors"]) {
			var pid component.ID
			if err := pid.UnmarshalText([]byte(proc)); err != nil {
				unchanged = false
				continue
			}
			if pid.Type() == sampler.Type {
				ok, seen := allowed[proc]
				allowed[proc] = unchanged && (ok || !seen)
			}
			unchanged = unchanged && unchangingProcessors[pid.Type()]
			// The store checks that the bytes still encode its batch, which catches what
			// the sampler changes (spans dropped, tracestates rewritten).
			storable = storable && (unchangingProcessors[pid.Type()] || pid.Type() == sampler.Type)
		}
		for _, exp := range asStrings(pm["exporters"]) {
			var eid component.ID
			if err := eid.UnmarshalText([]byte(exp)); err != nil || eid.Type() != storageexporter.Type {
				continue
			}
			ok, seen := exportAllowed[exp]
			exportAllowed[exp] = storable && (ok || !seen)
		}
	}
	set := map[string]any{}
	for proc, ok := range allowed {
		key := "processors::" + proc + "::" + holdRequestBytesKey
		if ok {
			if v, isBool := conf.Get(key).(bool); isBool && !v {
				continue // turned off in the config
			}
		}
		if strings.Contains(proc, confmap.KeyDelimiter) {
			return fmt.Errorf("processor ID %q: %q in an ID cannot be addressed to set %s", proc, confmap.KeyDelimiter, holdRequestBytesKey)
		}
		set[key] = ok
	}
	for exp, ok := range exportAllowed {
		key := "exporters::" + exp + "::" + useRequestBytesKey
		if ok {
			if v, isBool := conf.Get(key).(bool); isBool && !v {
				continue // turned off in the config
			}
		}
		if strings.Contains(exp, confmap.KeyDelimiter) {
			return fmt.Errorf("exporter ID %q: %q in an ID cannot be addressed to set %s", exp, confmap.KeyDelimiter, useRequestBytesKey)
		}
		set[key] = ok
	}
	if len(set) == 0 {
		return nil
	}
	if err := conf.Merge(confmap.NewFromStringMap(set)); err != nil {
		return fmt.Errorf("set %s: %w", holdRequestBytesKey, err)
	}
	return nil
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
