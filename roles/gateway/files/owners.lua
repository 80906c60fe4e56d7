-- owners.lua: whose each build and each session is, and whether a call may name them. Pure Lua (no HAProxy):
-- ownership.lua keeps one table per gateway worker; tests/unit/roles/test_gateway_lua.py runs it with lua5.4.
-- Written by buildkit-ops; do not edit on the host.
--
-- The first call to name an ID claims it for its client: a Session stream its session ID (the header
-- x-docker-expose-session-uuid), a Solve its build ref. From then on (docs/security.md, "Builds are their
-- owner's"):
--   start a build with a ref         its owner only (a ref is claimed by its first Solve)
--   use a session (Solve, LLB)       its owner only, whatever the role
--   watch a build (Status)           its owner; an admin or the operator too
--   steer a build (LLBBridge)        its owner; the operator too
-- An ID nobody holds yet is waited for a few seconds (buildx opens a build's Status and its Session beside its
-- Solve, in no fixed order), then refused: a call whose owner cannot be told is never passed.

local M = {}
M.__index = M

local ID = "^[%w%._%-]+$"   -- what BuildKit's IDs are made of (random base32/hex words); anything else is refused
local MAX_ID = 128

local function valid(id)
  return type(id) == "string" and #id <= MAX_ID and id:match(ID) ~= nil
end

-- forget: seconds after its last call an ID is forgotten (a build's calls keep touching its ref).
-- store (optional): where claims are kept beside this table, shared by the gateway's workers, so that a worker
-- started by a reload knows the builds of the one before (a client's new connection goes to the new worker):
-- {load = function(key) -> owner or nil, save = function(key, owner), drop = function(key)}.
function M.new(forget, store)
  return setmetatable({owner = {}, seen = {}, forget = forget, store = store}, M)
end

function M:_owner(key, now)
  local o = self.owner[key]
  if o == nil and self.store ~= nil then
    o = self.store.load(key)
    self.owner[key] = o
  end
  if o ~= nil then self.seen[key] = now end
  return o
end

function M:_claim(key, client, now)
  local o = self:_owner(key, now)
  if o == nil then
    self.owner[key] = client
    if self.store ~= nil then self.store.save(key, client) end
    o = client
  end
  self.seen[key] = now
  return o
end

-- Forget IDs unused for `forget` seconds (a build long over, a session closed).
function M:sweep(now)
  for key, t in pairs(self.seen) do
    if now - t > self.forget then
      self.owner[key], self.seen[key] = nil, nil
      if self.store ~= nil then self.store.drop(key) end
    end
  end
end

function M:count()
  local n = 0
  for _ in pairs(self.owner) do n = n + 1 end
  return n
end

local VERB = {solve = "start build", status = "watch build", bridge = "steer build", session = "use session"}

local function refusal(client, kind, id, why)
  return string.format("%s may not %s %s: %s", client, VERB[kind], id, why)
end

-- One call's verdict: "pass"; "deny" and the message; or "wait" (an ID nobody holds yet: ask again shortly) and
-- the message to refuse with if the wait ends so.
--   call = {kind = "solve"|"status"|"bridge"|"session", client, role, refs = {...}, sessions = {...}}
-- (bridge: refs holds its buildid header's values; session: sessions holds its header's values)
function M:decide(call, now)
  local client, role = call.client, call.role
  local operator = role == "operator"
  if call.kind == "session" then
    if #call.sessions ~= 1 or not valid(call.sessions[1]) then
      return "deny", string.format("%s may not open a session without exactly one valid session ID", client)
    end
    local id = call.sessions[1]
    if self:_claim("s:" .. id, client, now) ~= client then
      return "deny", refusal(client, "session", id, "it is another client's")
    end
    return "pass"
  end
  local pending = nil   -- the refusal if the wait ends with an ID still nobody's
  for _, id in ipairs(call.sessions) do
    if not valid(id) then return "deny", refusal(client, "session", "(malformed ID)", "not a session ID") end
    local o = self:_owner("s:" .. id, now)
    if o == nil then
      pending = pending or refusal(client, "session", id, "no session of that ID is open here")
    elseif o ~= client then
      return "deny", refusal(client, "session", id, "it is another client's")
    end
  end
  if call.kind ~= "solve" and #call.refs ~= 1 then
    return "deny", string.format("%s may not %s without exactly one build ref", client, VERB[call.kind])
  end
  for _, ref in ipairs(call.refs) do
    if not valid(ref) then return "deny", refusal(client, call.kind, "(malformed ref)", "not a build ref") end
    if call.kind == "solve" then
      -- a Solve claims its ref, but only once its sessions are known to be the caller's
      local o = self:_owner("r:" .. ref, now)
      if o ~= nil and o ~= client and not operator then
        return "deny", refusal(client, "solve", ref, "it is another client's")
      end
    else
      local o = self:_owner("r:" .. ref, now)
      local watcher = call.kind == "status" and (role == "admin" or operator)
      if o == nil then
        pending = pending or refusal(client, call.kind, ref, "no build of that ref runs here")
      elseif o ~= client and not watcher and not operator then
        return "deny", refusal(client, call.kind, ref, "it is another client's")
      end
    end
  end
  if call.kind == "solve" and #call.refs == 0 then
    return "deny", string.format("%s may not start a build without a build ref", client)
  end
  if pending then return "wait", pending end
  if call.kind == "solve" then
    for _, ref in ipairs(call.refs) do self:_claim("r:" .. ref, client, now) end
  end
  return "pass"
end

return M
