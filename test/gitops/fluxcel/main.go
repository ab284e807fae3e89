// Command fluxcel evaluates Flux Kustomization healthCheckExprs against objects the way
// kustomize-controller does (fluxcd/pkg/runtime/cel): the CEL environment Flux builds
// (expressions parsed, not compiled, with the object's top-level fields as variables), then
//  1. status.observedGeneration present and different from metadata.generation: InProgress;
//  2. inProgress, failed, current in that order: the first that is true decides;
//  3. none true: InProgress.
// An evaluation error is Unknown, which Flux keeps polling until its timeout.
//
// stdin: {"exprs": {"inProgress": "...", "failed": "...", "current": "..."}, "objects": [...]}
// stdout: one verdict per object, as a JSON array of strings.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

type exprs struct {
	InProgress string `json:"inProgress"`
	Failed     string `json:"failed"`
	Current    string `json:"current"`
}

type request struct {
	Exprs   exprs            `json:"exprs"`
	Objects []map[string]any `json:"objects"`
}

func program(env *cel.Env, src string) (cel.Program, error) {
	if src == "" {
		return nil, nil
	}
	ast, issues := env.Parse(src)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("parse %q: %w", src, issues.Err())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
}

func nested(obj map[string]any, path ...string) (any, bool) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func verdict(progs []cel.Program, obj map[string]any) string {
	if observed, ok := nested(obj, "status", "observedGeneration"); ok {
		if gen, ok := nested(obj, "metadata", "generation"); ok && gen != observed {
			return "InProgress"
		}
	}
	for i, name := range []string{"InProgress", "Failed", "Current"} {
		if progs[i] == nil {
			continue
		}
		val, _, err := progs[i].Eval(obj)
		if err != nil {
			return "Unknown"
		}
		b, ok := val.(types.Bool)
		if !ok {
			return "Unknown"
		}
		if b {
			return name
		}
	}
	return "InProgress"
}

func run() error {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return err
	}
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return err
	}
	progs := make([]cel.Program, 3)
	for i, src := range []string{req.Exprs.InProgress, req.Exprs.Failed, req.Exprs.Current} {
		if progs[i], err = program(env, src); err != nil {
			return err
		}
	}
	if progs[2] == nil {
		return fmt.Errorf("current is required")
	}
	out := make([]string, 0, len(req.Objects))
	for _, obj := range req.Objects {
		out = append(out, verdict(progs, obj))
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fluxcel:", err)
		os.Exit(1)
	}
}
