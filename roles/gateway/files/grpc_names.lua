-- grpc_names.lua: the build refs and session IDs a gRPC request to buildkitd names, read from its protobuf body.
-- Pure Lua (no HAProxy): ownership.lua calls it, tests/unit/roles/test_gateway_lua.py runs it with lua5.4.
-- Written by buildkit-ops; do not edit on the host.
--
-- BuildKit finds a build, its frontend bridge and a client's session by IDs the caller sends (api/services/
-- control/control.proto, frontend/gateway/pb/gateway.proto, solver/pb/ops.proto, BuildKit v0.35):
--   Control/Solve          Ref = 1, Session = 5, SourcePolicySession = 15, and LLB: Definition = 2,
--                          FrontendInputs = 10 (a map: entry key 1, value 2)
--   Control/Status         Ref = 1
--   LLBBridge/Solve        LLB: Definition = 1, FrontendInputs = 13
--   LLBBridge/ResolveImageConfig   SessionID = 6
--   LLBBridge/ResolveSourceMeta    Source = 1 (a SourceOp)
-- In LLB, Definition.def (1) holds marshaled Ops; an Op's source (3) is a SourceOp whose attrs (2, a map) may
-- name a session ("local.session": read that session's files; "oci.session": its OCI store), and an Op's build
-- (5, BuildOp) holds a Definition of its own (def = 3).
--
-- Every occurrence of a field counts: protobuf lets a field repeat and Go keeps the last, so reading only the
-- first would let a request name one ID to the gateway and another to buildkitd. A request that cannot be read
-- whole (compressed, cut at the gateway's buffer, malformed) names nothing certain and is refused by the caller.

local M = {}

local SESSION_ATTRS = {["local.session"] = true, ["oci.session"] = true}

-- what each field of a message names: "ref", "session", "attrs" (a SourceOp's map), or the schema of a message
local SOURCE_OP = {[2] = "attrs"}
local DEFINITION, BUILD_OP = {}, {}
local OP = {[3] = SOURCE_OP, [5] = BUILD_OP}
DEFINITION[1] = OP
BUILD_OP[3] = DEFINITION
local DEFINITIONS = {[2] = DEFINITION}   -- an entry of map<string, Definition>

M.SCHEMAS = {
  ["/moby.buildkit.v1.Control/Solve"] = {[1] = "ref", [2] = DEFINITION, [5] = "session", [10] = DEFINITIONS,
                                         [15] = "session"},
  ["/moby.buildkit.v1.Control/Status"] = {[1] = "ref"},
  ["/moby.buildkit.v1.frontend.LLBBridge/Solve"] = {[1] = DEFINITION, [13] = DEFINITIONS},
  ["/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig"] = {[6] = "session"},
  ["/moby.buildkit.v1.frontend.LLBBridge/ResolveSourceMeta"] = {[1] = SOURCE_OP},
}

local MAX_DEPTH = 16   -- BuildOps nest Definitions: deeper than this is refused, not followed

-- The varint at position i of s: its value and the position after it; nil if cut short or longer than 64 bits.
local function varint(s, i)
  local v, shift = 0, 0
  while shift < 64 do
    local b = s:byte(i)
    if b == nil then return nil end
    v = v | ((b & 0x7f) << shift)
    i = i + 1
    if b < 0x80 then return v, i end
    shift = shift + 7
  end
  return nil
end

-- The fields of the protobuf message s, in order, as {number, wire type, value}: the value of a length-delimited
-- field is its bytes; nil if s is not a well-formed message.
function M.fields(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local key, v
    key, i = varint(s, i)
    if key == nil then return nil end
    local number, wire = key >> 3, key & 7
    if number == 0 then return nil end
    if wire == 0 then
      v, i = varint(s, i)
      if v == nil then return nil end
    elseif wire == 1 or wire == 5 then
      local size = wire == 1 and 8 or 4
      if i + size - 1 > n then return nil end
      i = i + size
    elseif wire == 2 then
      local len
      len, i = varint(s, i)
      if len == nil or len < 0 or i + len - 1 > n then return nil end
      v = s:sub(i, i + len - 1)
      i = i + len
    else
      return nil   -- groups (3, 4) are not in BuildKit's messages; 6 and 7 are not wire types
    end
    out[#out + 1] = {number, wire, v}
  end
  return out
end

-- A session ID as BuildKit's session manager looks it up: the part after "prefix:" (session/manager.go Get; a
-- local source's attribute is cut the same way once more, so the last part is the one that counts).
local function session_id(v)
  return v:match("([^:]*)$")
end

local function walk(s, schema, found, depth, fields)
  if depth > MAX_DEPTH then return false end
  fields = fields or M.fields(s)
  if fields == nil then return false end
  for _, f in ipairs(fields) do
    local what = schema[f[1]]
    if what ~= nil then
      if f[2] ~= 2 then return false end   -- a known field of the wrong wire type: not what BuildKit sent
      if what == "ref" then
        found.refs[#found.refs + 1] = f[3]
      elseif what == "session" then
        if f[3] ~= "" then found.sessions[#found.sessions + 1] = session_id(f[3]) end
      elseif what == "attrs" then
        local entry = M.fields(f[3])
        if entry == nil then return false end
        local key, value = "", ""
        for _, e in ipairs(entry) do
          if e[2] ~= 2 then return false end
          if e[1] == 1 then key = e[3] elseif e[1] == 2 then value = e[3] end
        end
        if SESSION_ATTRS[key] and value ~= "" then found.sessions[#found.sessions + 1] = session_id(value) end
      elseif not walk(f[3], what, found, depth + 1) then
        return false
      end
    end
  end
  return true
end

-- The one message of a unary gRPC request body (a 5-byte prefix: compressed flag, length), or nil and why not.
function M.message(body)
  if #body < 5 then return nil, "cut short" end
  local flag, len = string.unpack(">B I4", body)
  if flag ~= 0 then return nil, "compressed" end
  if #body < 5 + len then return nil, "larger than the gateway reads" end
  if #body > 5 + len then return nil, "more than one message" end
  return body:sub(6)
end

local SOLVE = "/moby.buildkit.v1.Control/Solve"

-- Whether a Control/Solve runs its build inside buildkitd: it carries LLB (Definition, 2) or names a frontend
-- (Frontend, 6), as `buildctl build` does. Without either, the client runs the frontend and drives the build
-- through LLBBridge calls (`buildx build`, `bake`: client.Build).
local function in_daemon(fields)
  for _, f in ipairs(fields) do
    if (f[1] == 2 or f[1] == 6) and f[2] == 2 and f[3] ~= "" then return true end
  end
  return false
end

-- The refs and session IDs the request of `method` names: {refs = {...}, sessions = {...}, in_daemon = bool};
-- nil and why if its body cannot be read whole. A method without a schema names nothing in its body.
function M.names(method, body)
  local found = {refs = {}, sessions = {}, in_daemon = false}
  local schema = M.SCHEMAS[method]
  if schema == nil then return found end
  local msg, why = M.message(body or "")
  if msg == nil then return nil, why end
  local fields = M.fields(msg)   -- (read once: walked for the IDs, and looked at for LLB or a frontend)
  if fields == nil or not walk(msg, schema, found, 0, fields) then return nil, "not a well-formed request" end
  found.in_daemon = method == SOLVE and in_daemon(fields)
  return found
end

return M
