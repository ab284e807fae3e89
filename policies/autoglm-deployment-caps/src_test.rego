package autoglmdeploymentcaps_test

import data.autoglmdeploymentcaps
import rego.v1

params := {
	"maxGPUs": 8,
	"maxMemoryPerReplica": "64Gi",
	"maxReplicas": 10,
	"namespaces": [{"name": "research", "maxGPUs": 32, "maxReplicas": 40}],
}

agd(ns, name, spec) := {
	"apiVersion": "serving.autoglm.io/v1alpha1",
	"kind": "AutoGLMDeployment",
	"metadata": {"name": name, "namespace": ns},
	"spec": spec,
}

review(o) := {"review": {"kind": {"group": "serving.autoglm.io", "version": "v1alpha1", "kind": "AutoGLMDeployment"}, "namespace": o.metadata.namespace, "object": o}, "parameters": params}

gpu_spec(replicas, gpus) := {
	"model": {"source": "hf:org/model"},
	"replicas": replicas,
	"resources": {"gpu": {"count": gpus}, "memory": "32Gi"},
}

violations(o) := vs if {
	vs := autoglmdeploymentcaps.violation with input as review(o)
}

inventory(ns, objs) := {"namespace": {ns: {"serving.autoglm.io/v1alpha1": {"AutoGLMDeployment": {o.metadata.name: o | some o in objs}}}}}

test_within_caps_allowed if {
	count(violations(agd("team-a", "llm", gpu_spec(2, 4)))) == 0
}

test_defaults_allowed if {
	# No replicas (1), no GPUs (0); memory is set.
	count(violations(agd("team-a", "llm", {"model": {"source": "hf:o/m"}, "resources": {"memory": "1Gi"}}))) == 0
}

test_gpus_over_cap_denied if {
	some v in violations(agd("team-a", "llm", gpu_spec(3, 4)))
	v.details == {"gpus": 12, "cap": 8}
	contains(v.msg, "12 GPUs")
}

test_autoscaling_counts_max_replicas if {
	spec := object.union(gpu_spec(1, 2), {"autoscaling": {"enabled": true, "minReplicas": 1, "maxReplicas": 5}})
	some v in violations(agd("team-a", "llm", spec))
	v.details == {"gpus": 10, "cap": 8}
}

test_autoscaling_disabled_counts_replicas if {
	spec := object.union(gpu_spec(2, 2), {"autoscaling": {"enabled": false, "maxReplicas": 50}})
	count(violations(agd("team-a", "llm", spec))) == 0
}

test_namespace_override_allowed if {
	count(violations(agd("research", "llm", gpu_spec(4, 8)))) == 0
}

test_namespace_override_still_capped if {
	some v in violations(agd("research", "llm", gpu_spec(5, 8)))
	v.details == {"gpus": 40, "cap": 32}
}

test_namespace_override_inherits_memory_cap if {
	spec := object.union(gpu_spec(1, 1), {"resources": {"memory": "128Gi"}})
	some v in violations(agd("research", "llm", spec))
	contains(v.msg, "128Gi")
}

test_replicas_over_cap_denied if {
	some v in violations(agd("team-a", "llm", gpu_spec(11, 0)))
	v.details == {"replicas": 11, "cap": 10}
}

test_namespace_total_counts_others if {
	other := agd("team-a", "other", gpu_spec(2, 3))
	vs := violations(agd("team-a", "llm", gpu_spec(1, 4))) with data.inventory as inventory("team-a", [other])
	some v in vs
	v.details == {"gpus": 10, "cap": 8}
}

test_namespace_total_within_cap if {
	other := agd("team-a", "other", gpu_spec(1, 4))
	vs := violations(agd("team-a", "llm", gpu_spec(1, 4))) with data.inventory as inventory("team-a", [other])
	count(vs) == 0
}

test_update_does_not_count_itself_twice if {
	old := agd("team-a", "llm", gpu_spec(2, 4))
	vs := violations(agd("team-a", "llm", gpu_spec(2, 4))) with data.inventory as inventory("team-a", [old])
	count(vs) == 0
}

test_other_namespaces_not_counted if {
	other := agd("team-b", "other", gpu_spec(4, 8))
	vs := violations(agd("team-a", "llm", gpu_spec(2, 4))) with data.inventory as inventory("team-b", [other])
	count(vs) == 0
}

test_memory_over_cap_denied if {
	spec := object.union(gpu_spec(1, 0), {"resources": {"memory": "65Gi"}})
	some v in violations(agd("team-a", "llm", spec))
	contains(v.msg, "65Gi of memory per replica")
}

test_memory_decimal_units if {
	# 68G (68e9 bytes) is under 64Gi (68.7e9 bytes); 69G is over.
	count(violations(agd("team-a", "llm", object.union(gpu_spec(1, 0), {"resources": {"memory": "68G"}})))) == 0
	count(violations(agd("team-a", "llm", object.union(gpu_spec(1, 0), {"resources": {"memory": "69G"}})))) == 1
}

test_memory_integer_bytes if {
	count(violations(agd("team-a", "llm", object.union(gpu_spec(1, 0), {"resources": {"memory": 1073741824}})))) == 0
}

test_memory_unset_denied_when_capped if {
	some v in violations(agd("team-a", "llm", {"model": {"source": "hf:o/m"}}))
	contains(v.msg, "sets no spec.resources.memory")
}

test_no_caps_no_violations if {
	no_caps := object.union(object.remove(review(agd("x", "llm", gpu_spec(1000, 16))), ["parameters"]), {"parameters": {}})
	vs := autoglmdeploymentcaps.violation with input as no_caps
	count(vs) == 0
}

test_pod_template_resources_denied if {
	spec := object.union(gpu_spec(1, 1), {"podTemplate": {"spec": {"containers": [{"name": "server", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}})
	some v in violations(agd("team-a", "llm", spec))
	contains(v.msg, "spec.podTemplate.spec.containers[server]")
}

test_pod_template_without_resources_allowed if {
	spec := object.union(gpu_spec(1, 1), {"podTemplate": {"spec": {"containers": [{"name": "server", "env": [{"name": "A", "value": "1"}]}]}}})
	count(violations(agd("team-a", "llm", spec))) == 0
}

test_namespace_from_object_when_review_has_none if {
	o := agd("research", "llm", gpu_spec(4, 8))
	vs := autoglmdeploymentcaps.violation with input as {"review": {"object": o}, "parameters": params}
	count(vs) == 0
}
