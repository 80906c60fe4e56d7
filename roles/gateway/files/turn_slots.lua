-- turn_slots.lua: the builds that hold a turn, kept outside the gateway's worker so that a reload keeps the
-- counts. Pure Lua (no HAProxy): build_turns.lua gives it the files, its process ID and a way to tell whether a
-- worker and one of its own builds are alive; tests/unit/roles/test_gateway_lua.py runs it with lua5.4. Written
-- by buildkit-ops; do not edit on the host.
--
-- A client with a limit of N has N slots, each a file (`<client>.<i>`) in the host's root-only tmpfs folder
-- that also keeps the owners' claims. A build holding a turn writes "<worker pid> <ref>" in a free slot. After a
-- reload the old worker keeps running the builds it admitted, and both workers count the same files: the new
-- one sees the old one's builds as long as that worker lives and has not freed them. A slot is free when its
-- file is missing, when its worker is gone (stopped, or killed at hard-stop-after), or when it is this worker's
-- and the build has ended. Counting reads at most N files plus those past N still held (a limit lowered in
-- place): it does not grow with the number of clients or connections.
--
-- Two workers can find the same slot free at the same moment (only around a reload, when both have a build
-- waiting): each writes, waits a moment, and reads back; the one whose line is not there waits on.

local M = {}
M.__index = M

-- store: {read(name) -> text | nil, write(name, text), remove(name)}; me: this worker's process ID;
-- alive(pid) -> whether that worker still runs; running(ref) -> whether this worker's build still runs
function M.new(store, me, alive, running)
  return setmetatable({store = store, me = tostring(me), alive = alive, running = running, top = {}}, M)
end

local function name(client, i) return client .. "." .. i end

-- Whether slot `i` of the client is held, and by which build; a slot whose holder is gone is emptied on the way.
function M:_held(client, i)
  local text = self.store.read(name(client, i))
  if text == nil then return false end
  local pid, ref = text:match("^(%d+) (%S+)")
  local held
  if pid == nil then
    held = false                                        -- (a torn or foreign line holds nothing)
  elseif pid == self.me then
    held = self.running(ref)
  else
    held = self.alive(pid)
  end
  if not held then self.store.remove(name(client, i)) end
  return held, ref
end

-- How many of the client's builds hold a turn, a free slot within the limit (nil if none), and whether the build
-- of `ref` holds one already (a build admitted by the worker before a reload, whose next calls reach this one).
-- Slots past the limit (it was lowered in place) count as long as this worker has seen them held.
function M:count(client, limit, ref)
  local n, free, highest, holds = 0, nil, 0, false
  for i = 1, math.max(limit, self.top[client] or 0) do
    local held, by = self:_held(client, i)
    if held then
      n, highest, holds = n + 1, i, holds or by == ref
    elseif i <= limit and free == nil then
      free = i
    end
  end
  self.top[client] = highest
  return n, free, holds
end

-- The build of `ref` takes slot `i`; `confirm` says afterwards whether it kept it.
function M:take(client, i, ref)
  if i > (self.top[client] or 0) then self.top[client] = i end
  self.store.write(name(client, i), self.me .. " " .. ref .. "\n")
end

function M:confirm(client, i, ref)
  return self.store.read(name(client, i)) == self.me .. " " .. ref .. "\n"
end

-- The build of `ref` frees slot `i` (only if it still holds it).
function M:free(client, i, ref)
  if self:confirm(client, i, ref) then self.store.remove(name(client, i)) end
end

return M
