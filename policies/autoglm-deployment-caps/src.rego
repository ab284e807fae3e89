# AutoGLMDeploymentCaps: an AutoGLMDeployment stays within its namespace's caps on
#   - GPUs: replicas × spec.resources.gpu.count, summed over every AutoGLMDeployment in the
#     namespace that Gatekeeper has synced into data.inventory (without a sync Config, only the
#     object under review counts);
#   - memory per replica: spec.resources.memory, which must then be set;
#   - replicas.
# Replicas are spec.replicas, or autoscaling.maxReplicas while autoscaling is enabled: the
# operator may scale up to that without another admission review.
# Requests and limits set through spec.podTemplate.spec would escape the count, so they are
# refused while this constraint applies.
#
# Parameters: maxGPUs, maxMemoryPerReplica and maxReplicas apply to every namespace; an entry
# of `namespaces` (by name) overrides them for one namespace. A cap that is not set is not
# enforced.
package autoglmdeploymentcaps

import future.keywords.contains
import future.keywords.if
import future.keywords.in

group_version := "serving.autoglm.io/v1alpha1"

obj := input.review.object

namespace := input.review.namespace if input.review.namespace != ""

else := obj.metadata.namespace

# The cap for `field` in this namespace: its own entry's, else the cluster-wide one.
cap(field) := v if {
	some entry in object.get(input.parameters, "namespaces", [])
	entry.name == namespace
	v := entry[field]
} else := input.parameters[field]

replicas(o) := object.get(o, ["spec", "autoscaling", "maxReplicas"], 4) if {
	o.spec.autoscaling.enabled == true
} else := object.get(o, ["spec", "replicas"], 1)

gpus(o) := replicas(o) * object.get(o, ["spec", "resources", "gpu", "count"], 0)

# AutoGLMDeployments in this namespace other than the one under review.
others contains o if {
	some name, o in data.inventory.namespace[namespace][group_version].AutoGLMDeployment
	name != obj.metadata.name
}

namespace_gpus := gpus(obj) + sum([gpus(o) | some o in others])

# A quantity in bytes: integers as they are, strings such as 64Gi, 500M or 1e9 parsed.
bytes(q) := q if is_number(q)

bytes(q) := units.parse(q) if is_string(q)

violation contains {"msg": msg, "details": {"replicas": n, "cap": limit}} if {
	limit := cap("maxReplicas")
	n := replicas(obj)
	n > limit
	msg := sprintf("%s runs up to %d replicas; namespace %s allows %d", [ref, n, namespace, limit])
}

violation contains {"msg": msg, "details": {"gpus": n, "cap": limit}} if {
	limit := cap("maxGPUs")
	n := namespace_gpus
	n > limit
	msg := sprintf(
		"%s would bring namespace %s to %d GPUs (replicas x resources.gpu.count, with the other AutoGLMDeployments there); the cap is %d",
		[ref, namespace, n, limit],
	)
}

violation contains {"msg": msg} if {
	limit := cap("maxMemoryPerReplica")
	not obj.spec.resources.memory
	msg := sprintf("%s sets no spec.resources.memory; namespace %s caps memory per replica at %v", [ref, namespace, limit])
}

violation contains {"msg": msg} if {
	limit := cap("maxMemoryPerReplica")
	mem := obj.spec.resources.memory
	bytes(mem) > bytes(limit)
	msg := sprintf("%s asks for %v of memory per replica; namespace %s allows %v", [ref, mem, namespace, limit])
}

violation contains {"msg": msg} if {
	some kind in ["containers", "initContainers"]
	some c in obj.spec.podTemplate.spec[kind]
	c.resources
	msg := sprintf(
		"%s sets resources on spec.podTemplate.spec.%s[%s]; set them through spec.resources, which the namespace caps count",
		[ref, kind, c.name],
	)
}

ref := sprintf("AutoGLMDeployment %s/%s", [namespace, obj.metadata.name])
