-- build_turns.lua: per-client build limits of the gateway (the inventory's `limits: {builds: N}`), loaded by
-- haproxy.cfg. Written by buildkit-ops; do not edit on the host.
--
-- A build is one client connection (one `docker buildx build`, or one `bake` with all its targets) with a Solve
-- call running. A client with a limit of N runs at most N of them at once on this host; the next one waits here,
-- first come first served, and goes on as soon as one of the client's builds ends.
--
-- Why the wait is here and not in HAProxy's server queue: BuildKit fails a build whose Status call, or whose
-- frontend's LLBBridge call (buildx runs the Dockerfile frontend through the client), finds no job within a few
-- seconds, and whose job finds no Session within 5 s. So a waiting build holds its Solve *and* those calls (they
-- go on once their connection holds a turn), and lets its Session through.
--
-- Counting never leaks a turn: an admitted Solve is tracked in the stick table `build_turns` under its
-- connection's id, and HAProxy itself drops the tracking when the call ends, however it ends (done, failed,
-- cancelled, connection cut). A waiter whose client went away stops polling and loses its place.

local TABLE = "build_turns"
local SOLVE = "/moby.buildkit.v1.Control/Solve"
local POLL_MS = 200
local JUST_ADMITTED = 3  -- seconds an admitted connection counts before its tracking can be seen (safety margin)
local GONE = 2           -- seconds without a poll after which a waiter is taken for gone
local FORGET = 600       -- seconds after which an idle connection's record is dropped
local FOLLOWER_GRACE = 1 -- seconds a Status or LLBBridge call waits for its build's Solve to show up

local conns = {}   -- connection id -> {client, admitted, waiting, seen}
local queues = {}  -- client -> connection ids waiting, oldest first

local function now()
  local t = core.now()
  return t.sec + t.usec / 1e6
end

-- Solve calls of this connection running now: table_trackers counts its own lookup of an entry too.
local function running(txn, id)
  local n = txn.c:table_trackers(id, TABLE) or 0
  return n > 1
end

local function holds_turn(txn, id, c, t)
  return c.admitted ~= nil and (t - c.admitted < JUST_ADMITTED or running(txn, id))
end

-- The client's connections holding a turn; records of connections long idle are forgotten on the way.
local function turns_taken(txn, client, t)
  local n = 0
  for id, c in pairs(conns) do
    if holds_turn(txn, id, c, t) then
      if c.client == client then n = n + 1 end
    elseif c.waiting == 0 and t - c.seen > FORGET then
      conns[id] = nil
    end
  end
  return n
end

-- The connection first in the client's line, after dropping waiters that have gone.
local function first_in_line(client, t)
  local q = queues[client]
  while q[1] ~= nil do
    local c = conns[q[1]]
    if c ~= nil and c.waiting > 0 and t - c.seen <= GONE then return q[1] end
    table.remove(q, 1)
  end
  return nil
end

local function leave_line(client, id)
  local q = queues[client]
  for i = #q, 1, -1 do
    if q[i] == id then table.remove(q, i) end
  end
end

local function wait_turn(txn)
  local limit = tonumber(txn:get_var("txn.limit")) or 0
  local id = txn:get_var("sess.conn")
  if limit <= 0 or id == nil then return end
  local client = txn:get_var("txn.client") or ""
  local start = now()
  local c = conns[id]
  if c == nil then
    c = {client = client, admitted = nil, waiting = 0, seen = start}
    conns[id] = c
  end
  if txn:get_var("txn.method") ~= SOLVE then
    -- a Status or LLBBridge call: on once its build holds a turn, or once no Solve of its connection waits
    while not holds_turn(txn, id, c, now()) and (c.waiting > 0 or now() - start < FOLLOWER_GRACE) do
      core.msleep(POLL_MS)
    end
    return
  end
  queues[client] = queues[client] or {}
  c.waiting = c.waiting + 1
  table.insert(queues[client], id)
  while true do
    local t = now()
    c.seen = t
    if holds_turn(txn, id, c, t) then break end   -- another target of a bake that holds a turn already
    if first_in_line(client, t) == id and turns_taken(txn, client, t) < limit then
      c.admitted = t
      break
    end
    core.msleep(POLL_MS)
  end
  c.waiting = c.waiting - 1
  leave_line(client, id)
  txn:set_var("txn.waited", math.floor((now() - start) * 1000))
end

core.register_action("build_turn", {"http-req"}, wait_turn, 0)
