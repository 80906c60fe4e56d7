"""The gateway's pure Lua, run by Debian's lua5.4 (HAProxy's Lua): grpc_names.lua reads what a request names,
whatever the order, repetition or nesting of its fields, and refuses what it cannot read whole; owners.lua
decides who may start, watch or steer a build and use a session; turn_lines.lua and turn_slots.lua keep each
client's waiting builds in order and its turns counted across a reload."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from buildkit_ops.roles.gateway import files as gateway_files

FILES = Path(gateway_files.__file__).parent / "files"   # (where the package has them: roles/ is its symlink)
SOLVE, STATUS = "/moby.buildkit.v1.Control/Solve", "/moby.buildkit.v1.Control/Status"
BRIDGE_SOLVE = "/moby.buildkit.v1.frontend.LLBBridge/Solve"


def lua(script: str, stdin: str = "") -> list[str]:
    """Lines printed by `script`, run with the gateway's files on Lua's module path, `stdin` its input."""
    exe = shutil.which("lua5.4")
    assert exe, "lua5.4 is missing: lab/host-setup.sh installs it (apt install lua5.4)"
    r = subprocess.run([exe, "-e", f"package.path = '{FILES}/?.lua;' .. package.path\n{script}"], text=True,
                       input=stdin, capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


# --- a protobuf writer, as Go's protobuf marshals (key varint, then the value)
def varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def grpc(message: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


def local_source(session: str) -> bytes:
    """An Op whose SourceOp reads local files of `session` (llb.Local(..., llb.SessionID(session)))."""
    attrs = field(2, field(1, "local.session") + field(2, session))
    return field(3, field(1, "local://context") + attrs)


def definition(*ops: bytes) -> bytes:
    return b"".join(field(1, op) for op in ops)


def names(method: str, body: bytes) -> str:
    return lua(f"""local n = require("grpc_names")
local found, why = n.names({method!r}, ({_lua_bytes(body)}))
if found == nil then print("refused: " .. why) else
print("refs=" .. table.concat(found.refs, ",") .. " sessions=" .. table.concat(found.sessions, ",")) end""")[0]


def _lua_bytes(b: bytes) -> str:
    return '"' + "".join(f"\\x{c:02x}" for c in b) + '"'


def test_a_solve_names_its_ref_and_sessions_also_repeated_and_inside_its_llb():
    body = (field(1, "ref1") + field(2, definition(local_source("victim"), field(3, field(1, "docker-image://x"))))
            + field(5, "own") + field(6, "dockerfile.v0") + field(5, "later") + field(15, "policy")
            + field(10, field(1, "ctx") + field(2, definition(local_source("inputs")))))
    assert names(SOLVE, grpc(body)) == "refs=ref1 sessions=victim,own,later,policy,inputs"


def test_a_build_op_nested_llb_and_a_bridge_solve_are_read_too():
    nested = field(5, field(3, definition(local_source("deep"))))        # Op.build: BuildOp.def
    assert names(BRIDGE_SOLVE, grpc(field(1, definition(nested)))) == "refs= sessions=deep"
    assert names(BRIDGE_SOLVE, grpc(field(13, field(1, "k") + field(2, definition(local_source("x:in"))))))\
        == "refs= sessions=in"      # (BuildKit looks a session up by the part after "prefix:")


def test_what_cannot_be_read_whole_is_refused_never_guessed():
    ok = field(1, "ref1") + field(5, "own")
    assert names(STATUS, grpc(field(1, "r"))) == "refs=r sessions="
    assert names(SOLVE, grpc(ok)[:-2]) == "refused: larger than the gateway reads"     # cut at the buffer
    assert names(SOLVE, grpc(ok, flag=1)) == "refused: compressed"
    assert names(SOLVE, grpc(ok) + grpc(ok)) == "refused: more than one message"
    assert names(SOLVE, grpc(ok + b"\x2a\x05ab")) == "refused: not a well-formed request"   # length past the end
    assert names(SOLVE, grpc(field(5, 7))) == "refused: not a well-formed request"          # a varint session
    assert names(SOLVE, grpc(varint(1 << 3 | 3))) == "refused: not a well-formed request"    # a group


def test_unknown_fields_and_other_methods_name_nothing():
    assert names(SOLVE, grpc(field(1, "r") + field(99, "x") + field(11, 1))) == "refs=r sessions="
    assert names("/moby.buildkit.v1.frontend.LLBBridge/ReadFile", b"anything") == "refs= sessions="


def test_a_solve_that_runs_its_build_inside_buildkitd_is_told_from_one_that_drives_it_through_the_bridge():
    def in_daemon(body: bytes) -> str:
        return lua(f"""local n = require("grpc_names")
print(n.names({SOLVE!r}, ({_lua_bytes(grpc(body))})).in_daemon)""")[0]
    assert in_daemon(field(1, "r") + field(5, "s")) == "false"                         # buildx: client.Build
    assert in_daemon(field(1, "r") + field(6, "dockerfile.v0")) == "true"              # buildctl --frontend
    assert in_daemon(field(1, "r") + field(2, definition(local_source("s")))) == "true"  # buildctl with LLB


# --- owners.lua: one table, calls in order; each line: kind client role refs sessions time
def verdicts(*calls: str) -> list[str]:
    script = """local owners = require("owners")
local t = owners.new(3600)
for line in io.lines() do
  local kind, client, role, refs, sessions, now = line:match("^(%S+) (%S+) (%S+) (%S*) (%S*) (%S+)$")
  local function list(s) local out = {} for w in s:gmatch("[^,]+") do out[#out + 1] = w end return out end
  local v, message = t:decide({kind = kind, client = client, role = role, refs = list(refs:gsub("^-$", "")),
                               sessions = list(sessions:gsub("^-$", ""))}, tonumber(now))
  print(v .. (message and (": " .. message) or ""))
end
t:sweep(99999)
print("after sweep: " .. t:count())"""
    return lua(script, "\n".join(calls) + "\n")


def test_a_build_and_its_session_are_their_owners_only_and_an_admin_may_watch_not_steer():
    out = verdicts(
        "session laptop developer - s1 1",           # laptop opens its session: claimed
        "solve laptop developer r1 s1 2",            # and starts build r1 with it: r1 claimed
        "status laptop developer r1 - 3",            # control: the owner watches
        "bridge laptop developer r1 - 3",            # and steers
        "status laptop2 developer r1 - 4",           # another developer may not watch
        "bridge laptop2 developer r1 - 4",           # nor steer
        "solve laptop2 developer r2 s1 4",           # nor build with laptop's session
        "solve laptop2 developer r1 - 4",            # nor start a build under laptop's ref
        "session laptop2 developer - s1 4",          # nor open a session of that ID
        "status alice admin r1 - 5",                 # an admin watches
        "bridge alice admin r1 - 5",                 # but does not steer
        "bridge op operator r1 - 5",                 # the operator does both
        "solve op operator r9 s1 5",                 # but uses nobody's session
        "status laptop2 developer nobodys - 6",      # an ID nobody holds: wait (then refused)
        "solve laptop2 developer r3 notopen 6",
        "status laptop2 developer r3 - 6",           # (r3 was not claimed: its Solve waits)
        "bridge laptop developer r1,r2 - 7",         # a bridge call names exactly one build
        "session laptop developer - a,b 7",
        "solve laptop developer - - 7",
        "status laptop developer bad/ref - 7")
    assert out[:4] == ["pass"] * 4
    assert out[4:9] == [
        "deny: laptop2 may not watch build r1: it is another client's",
        "deny: laptop2 may not steer build r1: it is another client's",
        "deny: laptop2 may not use session s1: it is another client's",
        "deny: laptop2 may not start build r1: it is another client's",
        "deny: laptop2 may not use session s1: it is another client's"]
    assert out[9:13] == ["pass", "deny: alice may not steer build r1: it is another client's", "pass",
                         "deny: op may not use session s1: it is another client's"]
    assert out[13:16] == ["wait: laptop2 may not watch build nobodys: no build of that ref runs here",
                          "wait: laptop2 may not use session notopen: no session of that ID is open here",
                          "wait: laptop2 may not watch build r3: no build of that ref runs here"]
    assert out[16:20] == ["deny: laptop may not steer build without exactly one build ref",
                          "deny: laptop may not open a session without exactly one valid session ID",
                          "deny: laptop may not start a build without a build ref",
                          "deny: laptop may not watch build (malformed ref): not a build ref"]
    assert out[20] == "after sweep: 0"


@pytest.mark.parametrize("first", ["status", "bridge"])
def test_a_call_that_comes_before_its_solve_waits_and_then_passes_for_the_owner_only(first):
    out = verdicts(f"{first} laptop developer r1 - 1", "session laptop developer - s1 1",
                   "solve laptop developer r1 s1 2", f"{first} laptop developer r1 - 2",
                   f"{first} laptop2 developer r1 - 2")
    assert [v.split(":")[0] for v in out[:5]] == ["wait", "pass", "pass", "pass", "deny"]


def test_a_worker_started_by_a_reload_knows_the_builds_of_the_one_before_through_the_shared_claims():
    out = lua("""local owners = require("owners")
local files = {}
local store = {load = function(k) return files[k] end, save = function(k, o) files[k] = o end,
               drop = function(k) files[k] = nil end}
local old, new = owners.new(60, store), owners.new(60, store)
print(old:decide({kind = "session", client = "laptop", role = "developer", refs = {}, sessions = {"s1"}}, 1))
print(old:decide({kind = "solve", client = "laptop", role = "developer", refs = {"r1"}, sessions = {"s1"}}, 1))
-- laptop's build goes on over a new connection, to the new worker: its own calls pass, laptop2's do not
print(new:decide({kind = "bridge", client = "laptop", role = "developer", refs = {"r1"}, sessions = {}}, 2))
print(new:decide({kind = "status", client = "laptop2", role = "developer", refs = {"r1"}, sessions = {}}, 2))
print(new:decide({kind = "solve", client = "laptop2", role = "developer", refs = {"r2"}, sessions = {"s1"}}, 2))
print(files["r:r1"], files["s:s1"], files["r:r2"])
old:sweep(1000)
print(files["r:r1"], new:decide({kind = "status", client = "laptop", role = "developer", refs = {"r1"}, sessions = {}}, 1000))""")
    assert out == ["pass", "pass", "pass", "deny\tlaptop2 may not watch build r1: it is another client's",
                   "deny\tlaptop2 may not use session s1: it is another client's", "laptop\tlaptop\tnil",
                   "nil\tpass"]

# --- turn_lines.lua: each client's line of waiting builds
def test_a_line_is_first_come_first_served_per_client_and_forgets_who_went_away():
    out = lua("""local L = require("turn_lines")
local l = L.new(1)
local a = l:join("laptop", "ra", 0)
local b = l:join("laptop", "rb", 0.1)
local c = l:join("laptop", "rc", 0.2)
local x = l:join("laptop2", "rx", 0.2)
print(l:waiting("laptop", 0.3), l:first("laptop", b, 0.3), l:first("laptop", a, 0.3), l:first("laptop2", x, 0.3))
print(l:holds("ra"), l:holds("rb"), l:holds(nil))
l:leave("laptop", b)                     -- (only the first leaves by taking its turn)
l:leave("laptop", a)
print(l:waiting("laptop", 0.4), l:holds("ra"), l:first("laptop", b, 0.4))
-- c stops polling (its client went away); b polls on: once b has left, c is dropped, not waited for
l:first("laptop", b, 1.9)
l:leave("laptop", b)
print(l:waiting("laptop", 2.0), l:holds("rc"))
local d = l:join("laptop", nil, 2.1)
print(l:first("laptop", d, 2.1), l:waiting("laptop2", 2.1))""")
    assert out == ["3\tfalse\ttrue\ttrue", "true\ttrue\tfalse", "2\tfalse\ttrue", "0\tfalse", "true\t0"]



# --- turn_slots.lua: the turns, in files that both workers of a reload count
SLOTS = """local S = require("turn_slots")
files, dead, ended = {}, {}, {}
store = {read = function(n) return files[n] end, write = function(n, t) files[n] = t end,
         remove = function(n) files[n] = nil end}
function worker(pid)
  return S.new(store, pid, function(p) return not dead[p] end, function(ref) return not ended[ref] end)
end
"""


def test_a_worker_started_by_a_reload_counts_the_turns_the_old_one_still_holds():
    out = lua(SLOTS + """local old, new = worker(7), worker(9)
old:take("laptop", 1, "r1")
print(old:confirm("laptop", 1, "r1"), new:count("laptop", 1, "r2"))   -- the new worker sees r1's turn
print(new:count("laptop", 1, "r1"))          -- r1's next calls reach the new worker: it holds its turn already
print(new:count("laptop2", 1, "r9"))         -- (another client's slots are its own)
ended["r1"] = true                           -- r1's Solve ends: the old worker frees its turn
old:free("laptop", 1, "r1")
print(files["laptop.1"], new:count("laptop", 1, "r2"))""")
    assert out == ["true\t1\tnil\tfalse", "1\tnil\ttrue", "0\t1\tfalse", "nil\t0\t1\tfalse"]


def test_a_turn_whose_worker_is_gone_or_whose_build_ended_is_free_and_a_torn_line_holds_nothing():
    out = lua(SLOTS + """local old, new = worker(7), worker(9)
old:take("laptop", 1, "r1")
new:take("laptop", 2, "r2")
files["laptop.3"] = "garbage"
print(new:count("laptop", 3, "x"))
dead["7"] = true                             -- the old worker was stopped at hard-stop-after
ended["r2"] = true
print(new:count("laptop", 3, "x"))
print(files["laptop.1"], files["laptop.2"], files["laptop.3"])""")
    assert out == ["2\t3\tfalse", "0\t1\tfalse", "nil\tnil\tnil"]


def test_two_workers_taking_the_same_slot_at_once_leave_it_to_one_and_a_lowered_limit_counts_every_turn():
    out = lua(SLOTS + """local a, b = worker(7), worker(9)
a:take("laptop", 1, "ra")
b:take("laptop", 1, "rb")                    -- (both found slot 1 free at the same moment)
print(a:confirm("laptop", 1, "ra"), b:confirm("laptop", 1, "rb"))
a:free("laptop", 1, "ra")                    -- (freeing a slot another build holds leaves it alone)
print(files["laptop.1"] ~= nil)
for i, r in ipairs({"r2", "r3"}) do b:take("laptop", i + 1, r) end
print(b:count("laptop", 1, "x"))             -- the limit went from 3 to 1 in place: three builds still run
ended["rb"] = true
print(b:count("laptop", 1, "x"))""")
    assert out == ["false\ttrue", "true", "3\tnil\tfalse", "2\t1\tfalse"]


# --- folder_files.lua: the files the workers of a reload share
def test_a_folders_files_are_written_whole_read_back_and_removed_and_a_missing_folder_writes_nothing(tmp_path):
    out = lua(f"""local F = require("folder_files")
local f, none = F.new("{tmp_path}"), F.new("{tmp_path}/missing")
print(f.write("laptop.1", "123 r1\\n"), f.read("laptop.1") == "123 r1\\n", f.read("other"))
f.remove("laptop.1")
print(f.read("laptop.1"), none.write("x", "y"), none.read("x"))""")
    assert out == ["true\ttrue\tnil", "nil\tfalse\tnil"]
    assert list(tmp_path.iterdir()) == []
