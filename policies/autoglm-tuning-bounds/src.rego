# AutoGLMTuningBounds: an AutoGLMDeployment whose spec.tuning.mode is Auto gives bounds in
# spec.tuning.bounds for every knob the loop may move, so that it moves none without limits a
# person chose. A knob without bounds is never tuned, which in Auto mode is more likely a
# forgotten field than a decision; list the knobs that may go without in parameters.exempt.
package autoglmtuningbounds

import future.keywords.contains
import future.keywords.if
import future.keywords.in

knobs := ["replicas", "maxBatchSize", "maxBatchedTokens", "maxQueueDelayMs", "streamChunkTokens", "compression"]

obj := input.review.object

bounds := object.get(obj, ["spec", "tuning", "bounds"], {})

exempt := {k | some k in object.get(input.parameters, "exempt", [])}

missing contains knob if {
	obj.spec.tuning.mode == "Auto"
	some knob in knobs
	not knob in exempt
	not bounded(knob)
}

bounded(knob) if is_object(bounds[knob])

violation contains {"msg": msg, "details": {"missing": missing}} if {
	count(missing) > 0
	msg := sprintf(
		"AutoGLMDeployment %s: spec.tuning.mode Auto needs spec.tuning.bounds for %s",
		[obj.metadata.name, concat(", ", [k | some k in knobs; k in missing])],
	)
}
