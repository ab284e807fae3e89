# AutoGLMPodSecurity: AutoGLM's serving pods run as non-root, with no privilege escalation.
#
# Three kinds of object are reviewed:
#   - Pods and Deployments labelled app.kubernetes.io/name=autoglm-server: their pod spec as
#     written;
#   - AutoGLMDeployments: the pod the operator will run, that is the PodSpec it generates
#     (operator/src/controller/desired.ts) with spec.podTemplate.spec merged over it as
#     operator/src/controller/pod-merge.ts does: objects merge key by key, containers merge by
#     name, and anything else (null included) replaces. An override is judged by what the pod
#     will run, not by what it leaves out.
#
# Every container (containers, initContainers, ephemeralContainers) must
#   - run as non-root: runAsNonRoot true on the container, or on the pod where the container
#     does not set it, and runAsUser 0 on neither;
#   - set allowPrivilegeEscalation: false, and not be privileged.
package autoglmpodsecurity

import future.keywords.contains
import future.keywords.if
import future.keywords.in

server_name := "autoglm-server"

container_kinds := ["containers", "initContainers", "ephemeralContainers"]

# What desired.ts generates: the pod's securityContext, and each generated container's.
generated_pod_security := {
	"runAsNonRoot": true,
	"runAsUser": 65532,
	"runAsGroup": 65532,
	"fsGroup": 65532,
	"seccompProfile": {"type": "RuntimeDefault"},
}

generated_container_security := {
	"allowPrivilegeEscalation": false,
	"readOnlyRootFilesystem": true,
	"runAsNonRoot": true,
	"capabilities": {"drop": ["ALL"]},
}

obj := input.review.object

kind := input.review.kind.kind

labelled if obj.metadata.labels["app.kubernetes.io/name"] == server_name

# The generated containers: the server, and for an image: source the init container that
# copies the model out of its image.
generated := {
	"containers": [{"name": "server", "securityContext": generated_container_security}],
	"initContainers": [{"name": "model", "securityContext": generated_container_security} |
		startswith(obj.spec.model.source, "image:")
	],
	"ephemeralContainers": [],
}

# The pod spec under review, and where it is in the object (for messages).
pod := {"spec": obj.spec, "path": "spec"} if {
	kind == "Pod"
	labelled
}

pod := {"spec": obj.spec.template.spec, "path": "spec.template.spec"} if {
	kind == "Deployment"
	labelled
}

pod := {"spec": override, "path": "spec.podTemplate.spec"} if kind == "AutoGLMDeployment"

override := o if {
	o := obj.spec.podTemplate.spec
	is_object(o)
} else := {}

# Objects merge key by key; anything else replaces.
merge(base, over) := object.union(base, over) if is_object(over)

else := over

override_list(ck) := l if {
	l := override[ck]
	is_array(l)
} else := []

override_named(ck, name) := c if {
	some c in override_list(ck)
	c.name == name
}

is_generated(ck, name) if {
	some g in generated[ck]
	g.name == name
}

merged_container(ck, g) := merge(g, override_named(ck, g.name)) if override_named(ck, g.name)

else := g

pod_security := merge(generated_pod_security, object.get(override, "securityContext", {})) if {
	kind == "AutoGLMDeployment"
} else := object.get(pod.spec, "securityContext", {})

containers(ck) := array.concat(
	[merged_container(ck, g) | some g in generated[ck]],
	[c | some c in override_list(ck); not is_generated(ck, c.name)],
) if {
	kind == "AutoGLMDeployment"
} else := object.get(pod.spec, ck, [])

checked contains [ck, c] if {
	pod
	some ck in container_kinds
	some c in containers(ck)
}

security(c) := sc if {
	sc := c.securityContext
	is_object(sc)
} else := {}

pod_sc := pod_security if is_object(pod_security)

else := {}

runs_as_non_root(c) if security(c).runAsNonRoot == true

runs_as_non_root(c) if {
	not has_key(security(c), "runAsNonRoot")
	pod_sc.runAsNonRoot == true
}

runs_as_uid_0(c) if security(c).runAsUser == 0

runs_as_uid_0(c) if {
	not has_key(security(c), "runAsUser")
	pod_sc.runAsUser == 0
}

blocks_escalation(c) if security(c).allowPrivilegeEscalation == false

has_key(o, k) if _ = o[k]

where(ck, c) := sprintf("%s %s: %s.%s[%s]", [kind, obj.metadata.name, pod.path, ck, c.name])

violation contains {"msg": msg} if {
	some [ck, c] in checked
	not runs_as_non_root(c)
	msg := sprintf(
		"%s must run as non-root: set securityContext.runAsNonRoot: true on the container or the pod",
		[where(ck, c)],
	)
}

violation contains {"msg": msg} if {
	some [ck, c] in checked
	runs_as_uid_0(c)
	msg := sprintf("%s runs as user 0 (root)", [where(ck, c)])
}

violation contains {"msg": msg} if {
	some [ck, c] in checked
	not blocks_escalation(c)
	msg := sprintf("%s must set securityContext.allowPrivilegeEscalation: false", [where(ck, c)])
}

violation contains {"msg": msg} if {
	some [ck, c] in checked
	security(c).privileged == true
	msg := sprintf("%s must not be privileged", [where(ck, c)])
}
