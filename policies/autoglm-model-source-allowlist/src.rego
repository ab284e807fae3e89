# AutoGLMModelSourceAllowlist: spec.model.source of an AutoGLMDeployment starts with one of
# parameters.prefixes or matches one of parameters.patterns (RE2 regular expressions, not
# anchored unless they say so: write ^…$). With neither list set, every source is refused.
package autoglmmodelsourceallowlist

import future.keywords.contains
import future.keywords.if
import future.keywords.in

obj := input.review.object

source := obj.spec.model.source

prefixes := object.get(input.parameters, "prefixes", [])

patterns := object.get(input.parameters, "patterns", [])

allowed if {
	some p in prefixes
	startswith(source, p)
}

allowed if {
	some r in patterns
	regex.match(r, source)
}

violation contains {"msg": msg, "details": {"source": source}} if {
	not allowed
	msg := sprintf(
		"AutoGLMDeployment %s: spec.model.source %q is not allowed; it must start with one of %v or match one of %v",
		[obj.metadata.name, source, prefixes, patterns],
	)
}
