-- build_turns.lua: per-client build limits of the gateway (the inventory's `limits: {builds: N, queue: M}`),
-- loaded by haproxy.cfg. Written by buildkit-ops; do not edit on the host.
--
-- A build is one build ref (`docker buildx build` makes one per build, a `bake` one per target). A client with
-- a limit of N runs at most N of them at once on this host, however it spreads them over connections and
-- streams; the next one waits here in the client's line (turn_lines.lua), first come first served, and goes on
-- as soon as one of the client's builds ends. With a queue limit of M, the (M+1)th waiting build is refused at
-- once with RESOURCE_EXHAUSTED saying the limit and how many run.
--
-- Where a build waits is where its work starts, and never where the client has a deadline:
--   - buildx runs the frontend on the client (client.Build): its Control/Solve and its Status go to buildkitd
--     at once, its frontend bridge's Ping must be answered within 15 s (frontend/gateway/grpcclient), and the
--     build's work starts with its frontend's first LLBBridge/Solve: that call waits for the turn;
--   - `buildctl build` (a Solve carrying LLB or naming a frontend: grpc_names.lua says which) runs the whole
--     build inside its Control/Solve: that call waits, and its Status call with it (BuildKit fails a Status
--     that finds no build within seconds).
-- A build holds its turn while its Control/Solve runs: every Solve of a client with a limit is tracked in the
-- stick table `build_turns` under its ref, and HAProxy drops the tracking when the call ends, however it ends
-- (done, failed, cancelled, connection cut); a task frees the turns of ended builds five times a second.
-- The turns are files (turn_slots.lua), not this worker's memory: a reload starts a worker that counts the
-- builds the old one still runs. The line of waiting builds is this worker's (after a reload, builds already
-- waiting in the old worker and new ones in the new worker take free turns as they come).

local folder_files = require("folder_files")
local turn_lines = require("turn_lines")
local turn_slots = require("turn_slots")

local TABLE = "build_turns"
local SOLVE = "/moby.buildkit.v1.Control/Solve"
local STATUS = "/moby.buildkit.v1.Control/Status"
local TURNS = "/run/buildkit/turns"   -- made by the gateway's start script (handlers.py), 0700, tmpfs
local POLL_MS = 100
local CONFIRM_MS = 10   -- a taken slot is read back after this long (another worker may have taken it too)
local SWEEP_S = 0.2     -- how often the turns of ended builds are freed
local GONE = 1          -- seconds without a poll after which a waiter is taken for gone (its client went away)
local JUST_ADMITTED = 3 -- seconds an admitted build counts before its Solve's tracking can be seen

local function now()
  local t = core.now()
  return t.sec + t.usec / 1e6
end

-- (slot names are a client's name and a number: a name that is not a plain word is never counted in a file)
local PLAIN = "^[%w][%w._-]*$"

-- Without the folder (a gateway started before it existed), the turns are this worker's own, as before.
local function folder_or_memory()
  local folder = folder_files.new(TURNS)
  if folder.write(".probe", "") then
    folder.remove(".probe")
    return folder
  end
  local kept = {}
  return {read = function(name) return kept[name] end, write = function(name, text) kept[name] = text end,
          remove = function(name) kept[name] = nil end}
end

local lines = turn_lines.new(GONE)   -- each client's line of waiting builds
local admitted = {}                  -- ref -> {client, slot, at}: the builds this worker gave a turn

-- Whether the build's Control/Solve still runs (its tracking entry has a tracker).
local function solving(ref)
  local entry = core.backends[TABLE].stktable:lookup(ref)
  return entry ~= nil and (entry.use or 0) > 0
end

local function running(ref)
  local a = admitted[ref]
  return a ~= nil and (now() - a.at < JUST_ADMITTED or solving(ref))
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if f == nil then return false end
  f:close()
  return true
end

-- (made at the first call: the files are loaded by HAProxy's master, whose process ID is not the worker's)
local the_slots = nil
local function slots()
  if the_slots == nil then the_slots = turn_slots.new(folder_or_memory(), core.get_info().Pid, alive, running) end
  return the_slots
end

-- Takes a free slot for the build and keeps it unless another worker took the same slot at the same moment.
local function take(client, limit, ref)
  local n, free = slots():count(client, limit, ref)
  if free == nil or n >= limit then return false end
  admitted[ref] = {client = client, slot = free, at = now()}   -- (before the pause: its slot counts as held)
  slots():take(client, free, ref)
  core.msleep(CONFIRM_MS)
  if slots():confirm(client, free, ref) then return true end
  admitted[ref] = nil
  return false
end

local function wait_turn(txn)
  local limit = tonumber(txn:get_var("txn.limit")) or 0
  local ref = txn:get_var("txn.ref")
  if limit <= 0 or ref == nil then return end
  local method = txn:get_var("txn.method")
  -- whose turns these are: the client's, or a CI rule's (all its jobs': a digest of its key, haproxy.cfg)
  local name = txn:get_var("txn.turn_name") or txn:get_var("txn.client") or ""
  local client = txn:get_var("txn.turn_key") or name
  if method == STATUS or (method == SOLVE and txn:get_var("txn.in_daemon") == nil) then
    -- a Status waits while its buildctl build waits; a buildx build's Solve goes on (its frontend waits)
    while lines:holds(ref) do core.msleep(POLL_MS) end
    return
  end
  if admitted[ref] ~= nil then return end   -- a later frontend Solve of a build that holds its turn
  if not client:match(PLAIN) then
    txn:set_var("txn.full", "a client name that is not a plain word cannot be given a limited turn")
    return
  end
  local start = now()
  local queued = lines:waiting(client, start)
  local n, _, holds = slots():count(client, limit, ref)
  if holds then return end   -- a build the worker before a reload admitted: its next calls come here
  if queued == 0 and n < limit and take(client, limit, ref) then
    txn:set_var("txn.waited", math.floor((now() - start) * 1000))
    return
  end
  local queue = tonumber(txn:get_var("txn.queue")) or 0
  if queue > 0 and queued >= queue then
    txn:set_var("txn.full", string.format("%s has %d builds running (limit %d) and %d waiting (queue limit %d)",
                                          name, n, limit, queued, queue))
    return
  end
  local me = lines:join(client, ref, start)
  while not (lines:first(client, me, now()) and take(client, limit, ref)) do
    core.msleep(POLL_MS)
  end
  lines:leave(client, me)
  txn:set_var("txn.waited", math.floor((now() - start) * 1000))
end

core.register_action("build_turn", {"http-req"}, wait_turn, 0)

-- The turns of builds that ended (done, failed, cancelled or cut) are freed here, not by the next waiter.
core.register_task(function()
  while true do
    core.msleep(math.floor(SWEEP_S * 1000))
    for ref, a in pairs(admitted) do
      if not running(ref) then
        slots():free(a.client, a.slot, ref)
        admitted[ref] = nil
      end
    end
  end
end)

-- How many builds this host runs, as the gateway answers "is there room for one more build?": the Solve calls of
-- clients without a limit (tracked in running_builds under one key: its trackers; a lookup does not count itself),
-- and the builds holding a turn in this worker (a build waiting for its turn takes no room).
core.register_fetches("busy_builds", function()
  local n = 0
  for ref in pairs(admitted) do
    if running(ref) then n = n + 1 end
  end
  local entry = core.backends["running_builds"].stktable:lookup("host")
  return n + ((entry and entry.use) or 0)
end)
