package autoglmpodsecurity_test

import data.autoglmpodsecurity
import rego.v1

labels := {"app.kubernetes.io/name": "autoglm-server"}

secure_container := {
	"name": "server",
	"image": "autoglm/server:1",
	"securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
}

secure_pod_spec := {"securityContext": {"runAsNonRoot": true, "runAsUser": 65532}, "containers": [secure_container]}

review(kind, group, o) := {"review": {"kind": {"group": group, "version": "v1", "kind": kind}, "object": o}, "parameters": {}}

pod(meta_labels, spec) := review("Pod", "", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": meta_labels}, "spec": spec})

deployment(spec) := review("Deployment", "apps", {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "d", "labels": labels},
	"spec": {"template": {"metadata": {"labels": labels}, "spec": spec}},
})

agd(source, override) := review("AutoGLMDeployment", "serving.autoglm.io", {
	"apiVersion": "serving.autoglm.io/v1alpha1",
	"kind": "AutoGLMDeployment",
	"metadata": {"name": "llm"},
	"spec": {"model": {"source": source}, "podTemplate": {"spec": override}},
})

agd_plain := review("AutoGLMDeployment", "serving.autoglm.io", {
	"apiVersion": "serving.autoglm.io/v1alpha1",
	"kind": "AutoGLMDeployment",
	"metadata": {"name": "llm"},
	"spec": {"model": {"source": "hf:o/m"}},
})

violations(review_input) := vs if {
	vs := autoglmpodsecurity.violation with input as review_input
}

with_container_sc(sc) := {
	"securityContext": {"runAsNonRoot": true},
	"containers": [object.union(object.remove(secure_container, ["securityContext"]), {"securityContext": sc})],
}

# Pods and Deployments as written.

test_secure_pod_allowed if {
	count(violations(pod(labels, secure_pod_spec))) == 0
}

test_secure_deployment_allowed if {
	count(violations(deployment(secure_pod_spec))) == 0
}

test_unlabelled_pod_ignored if {
	count(violations(pod({"app": "other"}, {"containers": [{"name": "c", "image": "x"}]}))) == 0
}

test_pod_without_security_context_denied if {
	vs := violations(pod(labels, {"containers": [{"name": "c", "image": "x"}]}))
	count(vs) == 2
	some v in vs
	contains(v.msg, "must run as non-root")
}

test_pod_root_user_denied if {
	vs := violations(pod(labels, {"securityContext": {"runAsNonRoot": true, "runAsUser": 0}, "containers": [secure_container]}))
	some v in vs
	contains(v.msg, "runs as user 0")
}

test_container_overrides_pod_non_root_denied if {
	vs := violations(pod(labels, with_container_sc({"runAsNonRoot": false, "allowPrivilegeEscalation": false})))
	count(vs) == 1
	some v in vs
	contains(v.msg, "Pod p: spec.containers[server] must run as non-root")
}

test_container_non_root_without_pod_setting_allowed if {
	count(violations(pod(labels, {"containers": [secure_container]}))) == 0
}

test_escalation_allowed_denied if {
	vs := violations(deployment(with_container_sc({"allowPrivilegeEscalation": true})))
	count(vs) == 1
	some v in vs
	contains(v.msg, "Deployment d: spec.template.spec.containers[server] must set securityContext.allowPrivilegeEscalation: false")
}

test_escalation_unset_denied if {
	vs := violations(deployment(with_container_sc({})))
	some v in vs
	contains(v.msg, "allowPrivilegeEscalation: false")
}

test_privileged_denied if {
	vs := violations(deployment(with_container_sc({"allowPrivilegeEscalation": false, "privileged": true})))
	some v in vs
	contains(v.msg, "must not be privileged")
}

test_init_and_ephemeral_containers_checked if {
	spec := object.union(secure_pod_spec, {
		"initContainers": [{"name": "init", "image": "x"}],
		"ephemeralContainers": [{"name": "debug", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}],
	})
	vs := violations(pod(labels, spec))
	count(vs) == 1
	some v in vs
	contains(v.msg, "spec.initContainers[init]")
}

# AutoGLMDeployments: the override merged over what the operator generates.

test_agd_without_override_allowed if {
	count(violations(agd_plain)) == 0
}

test_agd_harmless_override_allowed if {
	override := {
		"containers": [{"name": "server", "env": [{"name": "X", "value": "1"}]}],
		"securityContext": {"fsGroup": 2000},
	}
	count(violations(agd("hf:o/m", override))) == 0
}

test_agd_pod_run_as_root_denied if {
	vs := violations(agd("hf:o/m", {"securityContext": {"runAsUser": 0}}))
	some v in vs
	v.msg == "AutoGLMDeployment llm: spec.podTemplate.spec.containers[server] runs as user 0 (root)"
}

test_agd_pod_run_as_non_root_false_is_overridden_by_container if {
	# The generated server container sets runAsNonRoot itself, so the pod-level false does not apply to it.
	count(violations(agd("hf:o/m", {"securityContext": {"runAsNonRoot": false}}))) == 0
}

test_agd_server_escalation_denied if {
	vs := violations(agd("hf:o/m", {"containers": [{"name": "server", "securityContext": {"allowPrivilegeEscalation": true}}]}))
	count(vs) == 1
}

test_agd_server_security_context_null_denied if {
	vs := violations(agd("hf:o/m", {"containers": [{"name": "server", "securityContext": null}]}))
	some v in vs
	contains(v.msg, "allowPrivilegeEscalation")
}

test_agd_pod_security_context_null_denied if {
	vs := violations(agd("hf:o/m", {
		"securityContext": null,
		"containers": [{"name": "server", "securityContext": {"runAsNonRoot": null}}],
	}))
	some v in vs
	contains(v.msg, "must run as non-root")
}

test_agd_sidecar_needs_its_own_settings if {
	vs := violations(agd("hf:o/m", {"containers": [{"name": "proxy", "image": "envoy"}]}))
	count(vs) == 1
	some v in vs
	v.msg == "AutoGLMDeployment llm: spec.podTemplate.spec.containers[proxy] must set securityContext.allowPrivilegeEscalation: false"
}

test_agd_secure_sidecar_allowed if {
	sidecar := {"name": "proxy", "image": "envoy", "securityContext": {"allowPrivilegeEscalation": false}}
	count(violations(agd("hf:o/m", {"containers": [sidecar]}))) == 0
}

test_agd_image_source_model_init_is_generated if {
	override := {"initContainers": [{"name": "model", "resources": {"limits": {"memory": "1Gi"}}}]}
	count(violations(agd("image:registry/model:1", override))) == 0
}

test_agd_model_init_is_new_for_other_sources if {
	override := {"initContainers": [{"name": "model", "image": "busybox"}]}
	vs := violations(agd("hf:o/m", override))
	some v in vs
	contains(v.msg, "spec.podTemplate.spec.initContainers[model]")
}

test_agd_privileged_model_init_denied if {
	override := {"initContainers": [{"name": "model", "securityContext": {"privileged": true}}]}
	vs := violations(agd("image:registry/model:1", override))
	some v in vs
	contains(v.msg, "must not be privileged")
}

test_container_root_user_denied if {
	vs := violations(pod(labels, with_container_sc({"allowPrivilegeEscalation": false, "runAsUser": 0})))
	count(vs) == 1
	some v in vs
	v.msg == "Pod p: spec.containers[server] runs as user 0 (root)"
}
