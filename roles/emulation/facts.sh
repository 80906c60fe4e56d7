# emulation: per wanted emulator (BKOPS_EMULATORS, e.g. "aarch64 arm"), whether its binfmt_misc entry is
# registered and enabled with the F flag (the kernel opens the emulator once, so it works inside containers),
# and whether the package's emulator and binfmt.d entry are installed. (BKOPS_EMULATORS is unquoted on
# purpose, to split it: its words come from a fixed table of qemu names, buildkit_ops/inventory/values.py EMULATORS.)
echo @@binfmt_mounted; [ -e /proc/sys/fs/binfmt_misc/register ] && echo yes || echo no
echo @@binfmt
for e in $BKOPS_EMULATORS; do
  f=/proc/sys/fs/binfmt_misc/qemu-$e
  if [ -f "$f" ]; then
    echo "$e $(head -1 "$f") $(sed -n 's/^flags: *//p' "$f")"
  else
    echo "$e absent"
  fi
done
echo @@qemu
for e in $BKOPS_EMULATORS; do
  # (the registration comes from systemd's binfmt.d file, or binfmt-support's where a release ships only that)
  [ -x "/usr/bin/qemu-$e-static" ] && { [ -f "/usr/lib/binfmt.d/qemu-$e.conf" ] || [ -f "/usr/share/binfmts/qemu-$e" ]; } \
    && echo "$e"
done
true
