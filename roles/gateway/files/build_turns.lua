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
-- (done, failed, cancelled, connection cut). Counting walks only the client's own admitted builds (at most N).

local turn_lines = require("turn_lines")

local TABLE = "build_turns"
local SOLVE = "/moby.buildkit.v1.Control/Solve"
local STATUS = "/moby.buildkit.v1.Control/Status"
local POLL_MS = 100
local GONE = 1          -- seconds without a poll after which a waiter is taken for gone (its client went away)
local JUST_ADMITTED = 3 -- seconds an admitted build counts before its Solve's tracking can be seen

local lines = turn_lines.new(GONE)   -- each client's line of waiting builds
local admitted = {}                  -- client -> {ref -> when admitted}: its builds holding a turn

local function now()
  local t = core.now()
  return t.sec + t.usec / 1e6
end

-- Whether the build's Control/Solve still runs (the converter counts its own lookup of an entry that exists).
local function solving(txn, ref)
  return (txn.c:table_trackers(ref, TABLE) or 0) > 1
end

-- The client's builds holding a turn now; those whose Solve has ended are dropped on the way.
local function running(txn, client, t)
  local n = 0
  for ref, since in pairs(admitted[client] or {}) do
    if t - since < JUST_ADMITTED or solving(txn, ref) then
      n = n + 1
    else
      admitted[client][ref] = nil
    end
  end
  return n
end

local function wait_turn(txn)
  local limit = tonumber(txn:get_var("txn.limit")) or 0
  local ref = txn:get_var("txn.ref")
  if limit <= 0 or ref == nil then return end
  local method = txn:get_var("txn.method")
  local client = txn:get_var("txn.client") or ""
  if method == STATUS or (method == SOLVE and txn:get_var("txn.in_daemon") == nil) then
    -- a Status waits while its buildctl build waits; a buildx build's Solve goes on (its frontend waits)
    while lines:holds(ref) do core.msleep(POLL_MS) end
    return
  end
  local mine = admitted[client] or {}
  admitted[client] = mine
  if mine[ref] ~= nil then return end   -- a later frontend Solve of a build that holds its turn
  local start = now()
  local queued = lines:waiting(client, start)
  if queued > 0 or running(txn, client, start) >= limit then
    local queue = tonumber(txn:get_var("txn.queue")) or 0
    if queue > 0 and queued >= queue then
      txn:set_var("txn.full", string.format("%s has %d builds running (limit %d) and %d waiting (queue limit %d)",
                                            client, running(txn, client, start), limit, queued, queue))
      return
    end
    local me = lines:join(client, ref, start)
    while not (lines:first(client, me, now()) and running(txn, client, now()) < limit) do
      core.msleep(POLL_MS)
    end
    lines:leave(client, me)
  end
  mine[ref] = now()
  txn:set_var("txn.waited", math.floor((now() - start) * 1000))
end

core.register_action("build_turn", {"http-req"}, wait_turn, 0)
