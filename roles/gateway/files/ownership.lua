-- ownership.lua: builds and sessions are their owner's (docs/security.md), loaded by haproxy.cfg. Written by
-- buildkit-ops; do not edit on the host.
--
-- For each call that names a build or a session (grpc_names.lua says which and where), the client of its
-- certificate must own what it names (owners.lua says who may do what). A refused call gets
-- PERMISSION_DENIED with the message in txn.denied; the IDs a call names go to the audit line (txn.ref,
-- txn.session), so that `builds` can tell whose each build is while it runs.
--
-- The table lives in this worker, and each claim is also a file in OWNERS (the host's root-only
-- /run/buildkit-ops/owners, on tmpfs): after a reload the old worker keeps the connections it holds, but a
-- client told to reconnect (HAProxy's GOAWAY) makes its build's next calls on a new connection, to the new
-- worker, which reads the claim there. An ID in neither is refused (fail closed).

local folder_files = require("folder_files")
local names = require("grpc_names")
local owners = require("owners")

local FORGET = 3600    -- seconds an ID is kept after its last call
local WAIT_MS = 10000  -- how long a call may wait for its build or session to be opened (BuildKit waits 5 s+)
local POLL_MS = 100
local OWNERS = "/run/buildkit/owners"   -- made by the gateway's start script (handlers.py), 0700

-- (keys are "r:" or "s:" and an ID owners.lua has checked is a plain word: never a path of its own; without the
-- folder, the claims are this worker's table alone, as before a reload)
local folder = folder_files.new(OWNERS)
local files = {
  load = function(key)
    local text = folder.read(key)
    return text and text:match("^[^\n]*")
  end,
  save = function(key, owner) folder.write(key, owner .. "\n") end,
  drop = folder.remove,
}

local table_of_owners = owners.new(FORGET, files)

local KIND = {
  ["/moby.buildkit.v1.Control/Solve"] = "solve",
  ["/moby.buildkit.v1.Control/Status"] = "status",
  ["/moby.buildkit.v1.Control/Session"] = "session",
}
local BRIDGE = "/moby.buildkit.v1.frontend.LLBBridge/"

local function now()
  local t = core.now()
  return t.sec + t.usec / 1e6
end

local function header(txn, name)
  local values, out = txn.http:req_get_headers()[name] or {}, {}
  for i = 0, #values do
    if values[i] ~= nil then out[#out + 1] = values[i] end
  end
  return out
end

local function check(txn)
  local method = txn:get_var("txn.method") or ""
  local kind = KIND[method] or (method:sub(1, #BRIDGE) == BRIDGE and "bridge") or nil
  if kind == nil then return end
  local client = txn:get_var("txn.client") or ""
  local found_in_daemon = false
  local call = {kind = kind, client = client, role = txn:get_var("txn.role") or "developer", refs = {}, sessions = {}}
  if kind == "session" then
    call.sessions = header(txn, "x-docker-expose-session-uuid")
  else
    local found, why = names.names(method, txn.f:req_body())
    if found == nil then
      txn:set_var("txn.denied", string.format("%s may not call this method with this request: %s", client, why))
      return
    end
    call.refs, call.sessions = found.refs, found.sessions
    found_in_daemon = found.in_daemon
    if kind == "bridge" then call.refs = header(txn, "buildkit-controlapi-buildid") end
  end
  local deadline = now() + WAIT_MS / 1000
  local verdict, message = table_of_owners:decide(call, now())
  local pause = 2   -- (a build's calls come milliseconds apart: ask again soon, then less and less often)
  while verdict == "wait" and now() < deadline do
    core.msleep(pause)
    pause = math.min(pause * 2, POLL_MS)
    verdict, message = table_of_owners:decide(call, now())
  end
  if verdict ~= "pass" then
    txn:set_var("txn.denied", message)
    return
  end
  -- (IDs that passed are plain words: owners.lua refuses any other)
  if call.refs[1] ~= nil then txn:set_var("txn.ref", call.refs[1]) end
  if call.sessions[1] ~= nil then txn:set_var("txn.session", call.sessions[1]) end
  if found_in_daemon then txn:set_var("txn.in_daemon", 1) end   -- (build_turns.lua: where its build waits)
  if kind == "solve" then
    -- whose build this is, in the log as it starts (its call's own line comes when it ends): `builds` reads it
    txn:log(core.info, string.format("solve started client=%s ref=%s session=%s", client, call.refs[1],
                                     call.sessions[1] or "-"))
  end
end

core.register_action("check_owner", {"http-req"}, check, 0)

-- IDs of builds long over are forgotten once a minute, not on the calls' path.
core.register_task(function()
  while true do
    core.sleep(60)
    table_of_owners:sweep(now())
  end
end)
