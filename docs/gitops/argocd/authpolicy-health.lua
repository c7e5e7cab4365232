-- Argo CD health of a mailagent.dev/v1alpha1 AuthPolicy, from the conditions the operator writes
-- (docs/gitops/README.md). Lua 5.1, as Argo CD runs it. A routine rotation (Rotating=True during
-- its overlap) stays Healthy: both keys are valid throughout.
local hs = {status = "Progressing", message = "waiting for the operator to report on this generation"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local ready = conditions["Ready"]
if ready == nil then
  return hs
end
if obj.metadata.generation ~= nil and ready.observedGeneration ~= nil
    and ready.observedGeneration < obj.metadata.generation then
  return hs
end
local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  return {status = "Degraded", message = degraded.reason .. ": " .. degraded.message}
end
-- An emergency revocation in flight: the operator is acting on it now.
local revoking = conditions["Revoking"]
if revoking ~= nil and revoking.status == "True" then
  return {status = "Progressing", message = revoking.message}
end
if ready.status == "True" then
  local rotating = conditions["Rotating"]
  if rotating ~= nil and rotating.status == "True" then
    return {status = "Healthy", message = ready.message .. " (rotating: " .. rotating.reason .. ")"}
  end
  return {status = "Healthy", message = ready.message}
end
if ready.reason == "Minting" then
  return {status = "Progressing", message = ready.message}
end
return {status = "Degraded", message = ready.reason .. ": " .. ready.message}
