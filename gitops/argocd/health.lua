-- Argo CD health of an AutoGLMDeployment (serving.autoglm.io/v1alpha1), from the conditions
-- the operator writes (operator/src/controller/status.ts): Available, Progressing, Degraded.
-- argocd-cm-patch.yaml embeds this file: edit it here, then run `node gitops/argocd/render.ts`.
--   no status yet, or status for an older generation  -> Progressing
--   Degraded=True (secret or PVC missing, apply rejected, crash loop, rollout stuck) -> Degraded
--   Progressing=True (rolling out)                    -> Progressing
--   Available=True and Progressing=False              -> Healthy
--   anything else                                     -> Progressing
local hs = {}

local function condition(conditions, wanted)
  for _, c in ipairs(conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    return reason .. ": " .. c.message
  end
  return reason
end

local generation = obj.metadata.generation or 0
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if (status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = status.conditions
local available = condition(conditions, "Available")
local progressing = condition(conditions, "Progressing")
local degraded = condition(conditions, "Degraded")

for _, wanted in ipairs({ "Available", "Progressing", "Degraded" }) do
  local c = condition(conditions, wanted)
  if c ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the " .. c.type .. " condition of generation " .. tostring(generation)
    return hs
  end
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing)
  return hs
end
if available ~= nil and available.status == "True" and progressing ~= nil and progressing.status == "False" then
  hs.status = "Healthy"
  hs.message = describe(available)
  return hs
end

hs.status = "Progressing"
if available ~= nil then
  hs.message = "Waiting for replicas: " .. describe(available)
else
  hs.message = "Waiting for the Available condition"
end
return hs
