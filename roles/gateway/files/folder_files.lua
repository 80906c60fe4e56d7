-- folder_files.lua: small text files in one folder, which is how the gateway's workers share what must outlive a
-- reload (ownership.lua's claims, build_turns.lua's turns; the host's root-only tmpfs). Written by buildkit-ops;
-- do not edit on the host. Names are the callers' plain words, never paths of their own.

local M = {}

function M.new(folder)
  return {
    read = function(name)
      local f = io.open(folder .. "/" .. name, "r")
      if f == nil then return nil end
      local text = f:read("a")
      f:close()
      return text
    end,
    -- false when the file cannot be written (no folder)
    write = function(name, text)
      local f = io.open(folder .. "/" .. name, "w")
      if f == nil then return false end
      f:write(text)
      f:close()
      return true
    end,
    remove = function(name) os.remove(folder .. "/" .. name) end,
  }
end

return M
