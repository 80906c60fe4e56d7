-- turn_lines.lua: each client's line of builds waiting their turn, first come first served. Pure Lua (no
-- HAProxy): build_turns.lua keeps one per gateway worker; tests/unit/roles/test_gateway_lua.py runs it with
-- lua5.4. Written by buildkit-ops; do not edit on the host.
--
-- Every operation costs O(1) (a waiter that went away leaves once, when it reaches the head): a line is a table
-- with head and tail indices, never searched.

local M = {}
M.__index = M

-- gone: seconds without a poll after which a waiter is taken for gone (its client cancelled or went away)
function M.new(gone)
  return setmetatable({lines = {}, refs = {}, gone = gone}, M)
end

function M:_line(client)
  local line = self.lines[client]
  if line == nil then
    line = {head = 1, tail = 0}
    self.lines[client] = line
  end
  return line
end

-- Waiters at the head whose client went away leave the line.
function M:_drop_gone(line, now)
  while line.head <= line.tail do
    local w = line[line.head]
    if w ~= nil and now - w.seen <= self.gone then return end
    if w ~= nil and w.ref ~= nil then self.refs[w.ref] = nil end
    line[line.head] = nil
    line.head = line.head + 1
  end
end

-- How many of the client's builds wait now.
function M:waiting(client, now)
  local line = self:_line(client)
  self:_drop_gone(line, now)
  return line.tail - line.head + 1
end

-- A build of `ref` (may be nil) joins the end of the client's line; its waiter is returned.
function M:join(client, ref, now)
  local line = self:_line(client)
  local w = {seen = now, ref = ref}
  line.tail = line.tail + 1
  line[line.tail] = w
  if ref ~= nil then self.refs[ref] = true end
  return w
end

-- Whether the waiter is first in its client's line (asked at each poll: it also says the waiter is still there).
function M:first(client, w, now)
  w.seen = now
  local line = self:_line(client)
  self:_drop_gone(line, now)
  return line[line.head] == w
end

-- The first waiter takes its turn and leaves the line.
function M:leave(client, w)
  local line = self:_line(client)
  if line[line.head] ~= w then return end
  line[line.head] = nil
  line.head = line.head + 1
  if w.ref ~= nil then self.refs[w.ref] = nil end
end

-- Whether the build of `ref` waits in a line (its Status and LLBBridge calls wait with it).
function M:holds(ref)
  return ref ~= nil and self.refs[ref] == true
end

return M
