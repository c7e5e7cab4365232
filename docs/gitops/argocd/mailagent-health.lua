-- Argo CD health of a mailagent.dev/v1alpha1 MailAgent, from the conditions the operator writes
-- (docs/gitops/README.md). Lua 5.1, as Argo CD runs it.
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
-- A condition about an older generation says nothing about the spec just synced.
if obj.metadata.generation ~= nil and ready.observedGeneration ~= nil
    and ready.observedGeneration < obj.metadata.generation then
  return hs
end
local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  return {status = "Degraded", message = degraded.reason .. ": " .. degraded.message}
end
if ready.status == "True" then
  return {status = "Healthy", message = ready.message}
end
if ready.reason == "Suspended" then
  return {status = "Suspended", message = ready.message}
end
-- Converging: pods starting or rolling, the AuthPolicy minting its first keys, its keyring
-- Secret not written yet.
local converging = {PodsNotReady = true, AuthPolicyNotReady = true, KeyringNotFound = true}
if converging[ready.reason] then
  return {status = "Progressing", message = ready.message}
end
-- Everything else the operator cannot fix by itself and renders fail-closed: a missing or
-- invalid AuthPolicy, a missing credentials Secret, an invalid spec or object.
return {status = "Degraded", message = ready.reason .. ": " .. ready.message}
