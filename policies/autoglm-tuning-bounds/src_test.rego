package autoglmtuningbounds_test

import data.autoglmtuningbounds
import rego.v1

all_bounds := {
	"replicas": {"min": 1, "max": 4},
	"maxBatchSize": {"min": 8, "max": 64},
	"maxBatchedTokens": {"min": 1024, "max": 8192},
	"maxQueueDelayMs": {"min": 0, "max": 10},
	"streamChunkTokens": {"min": 1, "max": 8},
	"compression": {"algorithms": ["none", "gzip"], "minLevel": 1, "maxLevel": 6},
}

input_for(tuning, p) := {"review": {"object": {"metadata": {"name": "llm"}, "spec": {"model": {"source": "hf:o/m"}, "tuning": tuning}}}, "parameters": p}

violations(tuning) := vs if {
	vs := autoglmtuningbounds.violation with input as input_for(tuning, {})
}

test_auto_with_all_bounds_allowed if {
	count(violations({"mode": "Auto", "bounds": all_bounds})) == 0
}

test_off_and_recommend_need_no_bounds if {
	count(violations({"mode": "Off", "bounds": {}})) == 0
	count(violations({"mode": "Recommend"})) == 0
	count(violations({})) == 0
}

test_auto_without_bounds_denied if {
	vs := violations({"mode": "Auto"})
	count(vs) == 1
	some v in vs
	v.msg == "AutoGLMDeployment llm: spec.tuning.mode Auto needs spec.tuning.bounds for replicas, maxBatchSize, maxBatchedTokens, maxQueueDelayMs, streamChunkTokens, compression"
}

test_each_missing_knob_denied if {
	every knob in autoglmtuningbounds.knobs {
		vs := violations({"mode": "Auto", "bounds": object.remove(all_bounds, [knob])})
		some v in vs
		v.details.missing == {knob}
	}
}

test_null_bounds_denied if {
	vs := violations({"mode": "Auto", "bounds": object.union(all_bounds, {"compression": null})})
	some v in vs
	v.details.missing == {"compression"}
}

test_exempt_knobs if {
	bounds := object.remove(all_bounds, ["replicas", "compression"])
	vs := autoglmtuningbounds.violation with input as input_for({"mode": "Auto", "bounds": bounds}, {"exempt": ["replicas", "compression"]})
	count(vs) == 0
}
